// Shared types of masking at the source: what the rewriter knows of a column's type, and the SQL
// form of the tokenization key. The rewriter (rewrite.ts) replaces every reference to a table with
// masked columns by a subquery whose masked columns are computed by expressions (expressions.ts).

/** A column's type as the catalog reports it (pg_attribute + pg_type), domains resolved to their base. */
export interface SourceColumnType {
  /** pg_attribute.atttypid (a domain's own OID for domain columns). */
  oid: number;
  /** pg_attribute.atttypmod; -1 when none. */
  typmod: number;
  /** format_type(atttypid, atttypmod): `character varying(12)`, `"Mood"`, `public.us_phone`. */
  sql: string;
  /** The base type for domains (getBaseType), else the same as oid/typmod/sql. RowDescription reports this one. */
  baseOid: number;
  baseTypmod: number;
  baseSql: string;
}

/**
 * The tokenization key as SQL needs it: HMAC-SHA256(key, m) = sha256(opad || sha256(ipad || m)),
 * where ipad/opad are the 64-byte key block XOR 0x36/0x5c (the key hashed first when longer than 64
 * bytes, as HMAC does). Both pads are key-equivalent secrets: they appear only in statement text sent
 * upstream and must be scrubbed from anything a masked reader can read back (see `secrets`).
 */
export interface SqlTokenKey {
  /** 128 lower-case hex digits. */
  ipadHex: string;
  opadHex: string;
  /** Every string that would reveal the key if a masked reader saw it (hex of both pads). */
  secrets: readonly string[];
}
