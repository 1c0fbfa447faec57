// PostgreSQL type knowledge for masking: which result types carry text a detector can read, and which value shape a masked replacement must keep.
//
// RowDescription reports domains as their base type (printtup.c sends getBaseType), so a domain over
// text arrives here as text. OIDs at or above FirstNormalObjectId (16384) are user-defined (enums,
// composites, extension types such as citext): their text output is read as text, because that is
// where PHI in an unknown type would show, and their binary form cannot be inspected.

/** How masking treats values of one type. */
export enum TypeKind {
  /** text, varchar, bpchar, name, "char", unknown, refcursor, cstring, citext-like user types. */
  Text = 1,
  Json,
  Jsonb,
  Xml,
  Int2,
  Int4,
  Int8,
  Numeric,
  Date,
  Timestamp,
  Timestamptz,
  Bytea,
  Uuid,
  /** Arrays whose elements are text-like (text[], varchar[], json[], anyarray from pg_stats, ...). */
  TextArray,
  /** record and composite values: `(a,"b c",)`. */
  Record,
  /** Text-like output of a catalog type that may embed data (pg_node_tree, pg_mcv_list, tsvector...). */
  TextOther,
  /** A user-defined type (OID >= 16384): read as text, opaque in binary. */
  UserDefined,
  /** Everything else (bool, floats, intervals, geometric, network, ranges of numbers...): no detectors, masked to NULL. */
  Other,
}

export const FIRST_NORMAL_OBJECT_ID = 16384;

export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  pgNodeTree: 194,
  jsonArray: 199,
  xmlArray: 143,
  float4: 700,
  float8: 701,
  unknown: 705,
  charArray: 1002,
  nameArray: 1003,
  textArray: 1009,
  bpcharArray: 1014,
  varcharArray: 1015,
  cstringArray: 1263,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  refcursor: 1790,
  record: 2249,
  cstring: 2275,
  anyarray: 2277,
  recordArray: 2287,
  uuid: 2950,
  pgNdistinct: 3361,
  pgDependencies: 3402,
  tsvector: 3614,
  tsquery: 3615,
  tsvectorArray: 3643,
  jsonb: 3802,
  jsonbArray: 3807,
  jsonpath: 4072,
  pgMcvList: 5017,
} as const;

const KINDS = new Map<number, TypeKind>([
  [OID.text, TypeKind.Text],
  [OID.varchar, TypeKind.Text],
  [OID.bpchar, TypeKind.Text],
  [OID.name, TypeKind.Text],
  [OID.char, TypeKind.Text],
  [OID.unknown, TypeKind.Text],
  [OID.refcursor, TypeKind.Text],
  [OID.cstring, TypeKind.Text],
  [OID.json, TypeKind.Json],
  [OID.jsonb, TypeKind.Jsonb],
  [OID.xml, TypeKind.Xml],
  [OID.int2, TypeKind.Int2],
  [OID.int4, TypeKind.Int4],
  [OID.int8, TypeKind.Int8],
  [OID.numeric, TypeKind.Numeric],
  [OID.date, TypeKind.Date],
  [OID.timestamp, TypeKind.Timestamp],
  [OID.timestamptz, TypeKind.Timestamptz],
  [OID.bytea, TypeKind.Bytea],
  [OID.uuid, TypeKind.Uuid],
  [OID.textArray, TypeKind.TextArray],
  [OID.varcharArray, TypeKind.TextArray],
  [OID.bpcharArray, TypeKind.TextArray],
  [OID.nameArray, TypeKind.TextArray],
  [OID.charArray, TypeKind.TextArray],
  [OID.cstringArray, TypeKind.TextArray],
  [OID.jsonArray, TypeKind.TextArray],
  [OID.jsonbArray, TypeKind.TextArray],
  [OID.xmlArray, TypeKind.TextArray],
  [OID.tsvectorArray, TypeKind.TextArray],
  [OID.recordArray, TypeKind.TextArray],
  // pg_stats.most_common_vals and histogram_bounds are anyarray: real column values.
  [OID.anyarray, TypeKind.TextArray],
  [OID.record, TypeKind.Record],
  [OID.pgNodeTree, TypeKind.TextOther],
  [OID.pgMcvList, TypeKind.TextOther],
  [OID.pgNdistinct, TypeKind.TextOther],
  [OID.pgDependencies, TypeKind.TextOther],
  [OID.tsvector, TypeKind.TextOther],
  [OID.tsquery, TypeKind.TextOther],
  [OID.jsonpath, TypeKind.TextOther],
]);

export function typeKind(oid: number): TypeKind {
  const k = KINDS.get(oid);
  if (k !== undefined) return k;
  // OID 0 is what a caller passes when it does not know the type (COPY has no RowDescription).
  if (oid === 0) return TypeKind.Text;
  return oid >= FIRST_NORMAL_OBJECT_ID ? TypeKind.UserDefined : TypeKind.Other;
}

/** Does the text form of this type carry free text that content detectors should read? */
export function detectable(kind: TypeKind): boolean {
  switch (kind) {
    case TypeKind.Text:
    case TypeKind.Json:
    case TypeKind.Jsonb:
    case TypeKind.Xml:
    case TypeKind.TextArray:
    case TypeKind.Record:
    case TypeKind.TextOther:
    case TypeKind.UserDefined:
      return true;
    default:
      return false;
  }
}

/** Text-like types whose any string is a valid value, so a placeholder or token string may stand in. */
export function acceptsAnyText(kind: TypeKind): boolean {
  return kind === TypeKind.Text || kind === TypeKind.Xml || kind === TypeKind.UserDefined;
}
