// `phigate completion bash|zsh|fish`: shell completion scripts generated from the commander program
// itself, so commands, subcommands, flags and their choices never drift from the CLI. Values that
// live on the gateway (connection names, pending approval ids, session ids) come from the hidden
// `phigate __complete KIND` at completion time, silently empty when not logged in or unreachable.
import { Argument, Command, type Option } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { CONNECTIONS_PATH, type ConnectionInfo } from '../../tunnel/protocol.js';
import { APPROVALS_PATH, type ApprovalListResponse } from '../../approvals/api.js';
import { SESSIONS_PATH, type SessionsResponse } from '../../audit/api.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** What a flag's value or a positional argument completes to. */
export type ValueKind = 'text' | 'file' | 'dir' | 'command' | 'connection' | 'approval' | 'session' | `choices:${string}`;

/** Gateway-backed kinds `phigate __complete` answers. */
export const DYNAMIC_KINDS = ['connection', 'approval', 'session'] as const;
type DynamicKind = (typeof DYNAMIC_KINDS)[number];

export interface OptionSpec {
  flags: string[];
  description: string;
  /** Undefined for a flag that takes no value. */
  value?: ValueKind;
}

export interface CommandSpec {
  /** Space-separated path below the program ('' for the program itself). */
  path: string;
  description: string;
  subcommands: { name: string; description: string }[];
  options: OptionSpec[];
  /** One entry per positional argument; a variadic one is last and repeats. */
  args: { kind: ValueKind; variadic: boolean }[];
}

/** How a flag's value completes, from its choices, its name and its value placeholder. */
function optionValue(o: Option): ValueKind | undefined {
  if (!o.required && !o.optional) return undefined;
  if (o.argChoices?.length) return `choices:${o.argChoices.join(' ')}`;
  if (o.long === '--connection') return 'connection';
  if (o.long === '--session') return 'session';
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? '';
  if (/\bfile\b/i.test(placeholder)) return 'file';
  if (/\bdir\b/i.test(placeholder)) return 'dir';
  return 'text';
}

function argumentValue(cmdName: string, a: Argument): ValueKind {
  if (a.argChoices?.length) return `choices:${a.argChoices.join(' ')}`;
  const name = a.name();
  if (name === 'connection') return 'connection';
  if (name === 'session') return 'session';
  if (name === 'id' && cmdName === 'approve') return 'approval';
  if (name === 'command') return 'command';
  if (/file/.test(name)) return 'file';
  return 'text';
}

/** Every command of the program as data: what the generated scripts are made of. */
export function describeProgram(program: Command): CommandSpec[] {
  const out: CommandSpec[] = [];
  const walk = (cmd: Command, path: string): void => {
    const help = cmd.createHelp();
    const subs = help.visibleCommands(cmd).filter((c) => c.name() !== 'help' || c.commands.length > 0);
    const options: OptionSpec[] = help.visibleOptions(cmd).map((o) => {
      const flags = [o.short, o.long].filter((f): f is string => Boolean(f));
      const value = optionValue(o);
      return { flags, description: o.description, ...(value ? { value } : {}) };
    });
    out.push({
      path,
      description: cmd.description(),
      subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
      options,
      args: cmd.registeredArguments.map((a) => ({ kind: argumentValue(cmd.name(), a), variadic: a.variadic })),
    });
    for (const c of subs) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return out;
}

export function completionCommand(): Command {
  return new Command('completion')
    .description('print the shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .addHelpText('after', `
Load it in the current shell:
  bash:  source <(phigate completion bash)
  zsh:   source <(phigate completion zsh)            (after compinit)
  fish:  phigate completion fish | source
Install it for every new shell:
  bash:  phigate completion bash > ~/.local/share/bash-completion/completions/phigate
  zsh:   phigate completion zsh > "\${fpath[1]}/_phigate"
  fish:  phigate completion fish > ~/.config/fish/completions/phigate.fish
The files in completions/ of the package load the same script from the phigate on your PATH.`)
    .action((shell: Shell, _opts: unknown, cmd: Command) => {
      let root = cmd;
      while (root.parent) root = root.parent;
      process.stdout.write(completionScript(shell, root));
    });
}

export function completionScript(shell: Shell, program: Command): string {
  const specs = describeProgram(program);
  if (shell === 'bash') return bashScript(specs);
  if (shell === 'zsh') return zshScript(specs);
  return fishScript(specs);
}

/** `phigate __complete KIND [--server URL] [--profile NAME]`: one value per line, never an error. */
export function completeValuesCommand(): Command {
  return withGatewayOptions(
    new Command('__complete')
      .description('values for shell completion (connection, approval, session); prints nothing on any failure')
      .argument('<kind>'),
  ).action(async (kind: string, opts: GlobalOptions) => {
    try {
      const values = await dynamicValues(kind as DynamicKind, opts);
      if (values.length) process.stdout.write(`${values.join('\n')}\n`);
    } catch (err) {
      // Completion must never print errors into the user's command line (PHIGATE_DEBUG=1 shows why).
      if (process.env['PHIGATE_DEBUG']) process.stderr.write(`phigate debug: __complete ${kind}: ${(err as Error).message}\n`);
    }
  });
}

async function dynamicValues(kind: DynamicKind, opts: GlobalOptions): Promise<string[]> {
  if (!DYNAMIC_KINDS.includes(kind)) return [];
  const ctx = resolveContext(opts);
  const token = await ctx.token();
  const get = async <T>(path: string): Promise<T | undefined> => {
    const res = await fetch(`${ctx.serverUrl}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3_000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  };
  if (kind === 'connection') {
    return (await get<{ connections: ConnectionInfo[] }>(CONNECTIONS_PATH))?.connections.map((c) => c.name) ?? [];
  }
  if (kind === 'approval') {
    return (await get<ApprovalListResponse>(APPROVALS_PATH))?.approvals.filter((a) => a.status === 'pending').map((a) => a.id) ?? [];
  }
  const since = new Date(Date.now() - 24 * 3_600_000).toISOString();
  return (await get<SessionsResponse>(`${SESSIONS_PATH}?since=${encodeURIComponent(since)}&limit=50`))?.sessions.map((s) => s.session) ?? [];
}

// ---- script generation -------------------------------------------------------------------------

/** A single-quoted shell word (bash, zsh and fish all read '...' literally, with '\'' for a quote). */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** fish quotes differently inside '...': backslash escapes ' and \\. */
function fq(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The shared POSIX-style `case` data functions (bash and zsh read them alike). */
function caseFunctions(specs: CommandSpec[]): string {
  const lines: string[] = [];
  lines.push('_phigate_subcommands() {', '  case "$1" in');
  for (const s of specs) if (s.subcommands.length) lines.push(`    ${sq(s.path)}) echo ${sq(s.subcommands.map((c) => c.name).join(' '))} ;;`);
  lines.push('  esac', '}', '');
  lines.push('_phigate_options() {', '  case "$1" in');
  for (const s of specs) lines.push(`    ${sq(s.path)}) echo ${sq(s.options.flatMap((o) => o.flags).join(' '))} ;;`);
  lines.push('  esac', '}', '');
  lines.push('# What the value of option $2 under command $1 completes to; nothing for a flag without a value.');
  lines.push('_phigate_option_value() {', '  case "$1|$2" in');
  for (const s of specs) {
    for (const o of s.options) if (o.value) lines.push(`    ${o.flags.map((f) => sq(`${s.path}|${f}`)).join('|')}) echo ${sq(o.value)} ;;`);
  }
  lines.push('  esac', '}', '');
  lines.push('# What positional argument number $2 (from 0) of command $1 completes to.');
  lines.push('_phigate_argument() {', '  case "$1|$2" in');
  for (const s of specs) {
    s.args.forEach((a, i) => {
      lines.push(`    ${a.variadic ? `${sq(`${s.path}|`)}*` : sq(`${s.path}|${i}`)}) echo ${sq(a.variadic ? `${a.kind}@${i}` : a.kind)} ;;`);
    });
  }
  lines.push('  esac', '}', '');
  // The walk over the words before the cursor: finds the command path, the positional index, and
  // --server/--profile to pass on to `phigate __complete`. Plain POSIX arithmetic: bash 3.2 and zsh.
  lines.push(`# Sets _phigate_path, _phigate_npos, _phigate_pending (the option whose value is being typed) and
# _phigate_global from the words "$@" before the current one (the first is the command itself).
_phigate_walk() {
  _phigate_path=''
  _phigate_npos=0
  _phigate_pending=''
  _phigate_global=()
  local w kind dashdash=0 subs
  shift
  while [ $# -gt 0 ]; do
    w="$1"
    shift
    if [ "$dashdash" = 1 ]; then _phigate_npos=$((_phigate_npos + 1)); continue; fi
    case "$w" in
      --) dashdash=1; continue ;;
      --*=*) continue ;;
      -?*)
        kind="$(_phigate_option_value "$_phigate_path" "$w")"
        if [ -n "$kind" ]; then
          if [ $# -eq 0 ]; then _phigate_pending="$w"; return; fi
          case "$w" in --server|--profile) _phigate_global+=("$w" "$1") ;; esac
          shift
        fi
        continue ;;
    esac
    subs=" $(_phigate_subcommands "$_phigate_path") "
    if [ "$_phigate_npos" = 0 ] && [ -n "$w" ] && [ "\${subs#* "$w" }" != "$subs" ]; then
      _phigate_path="\${_phigate_path:+$_phigate_path }$w"
      continue
    fi
    _phigate_npos=$((_phigate_npos + 1))
  done
}

# The kind of value to complete at the cursor: an option's value, a subcommand or an argument.
_phigate_kind() {
  local cur="$1" kind
  if [ -n "$_phigate_pending" ]; then _phigate_option_value "$_phigate_path" "$_phigate_pending"; return; fi
  case "$cur" in -*) echo options; return ;; esac
  if [ "$_phigate_npos" = 0 ] && [ -n "$(_phigate_subcommands "$_phigate_path")" ]; then echo subcommands; return; fi
  kind="$(_phigate_argument "$_phigate_path" "$_phigate_npos")"
  case "$kind" in
    *@*)
      # a variadic argument: a command first, then whatever that command takes (files)
      if [ "$_phigate_npos" = "\${kind#*@}" ]; then echo "\${kind%@*}"; else echo file; fi ;;
    *) echo "$kind" ;;
  esac
}
`);
  return lines.join('\n');
}

function bashScript(specs: CommandSpec[]): string {
  return `# bash completion for phigate (generated by \`phigate completion bash\` from the CLI itself; do not edit)
# Load: source <(phigate completion bash)
${caseFunctions(specs)}
_phigate() {
  # Words from the line itself, split on blanks: COMP_WORDS would also split URLs at ':' and '='.
  local line="\${COMP_LINE:0:COMP_POINT}"
  local -a words
  read -r -a words <<< "$line"
  case "$line" in *[[:space:]]) words+=("") ;; esac
  [ \${#words[@]} -eq 0 ] && words=("phigate" "")
  local cur="\${words[\${#words[@]}-1]}"
  _phigate_walk "\${words[@]:0:\${#words[@]}-1}"
  local kind
  kind="$(_phigate_kind "$cur")"
  COMPREPLY=()
  case "$kind" in
    options) COMPREPLY=($(compgen -W "$(_phigate_options "$_phigate_path")" -- "$cur")) ;;
    subcommands) COMPREPLY=($(compgen -W "$(_phigate_subcommands "$_phigate_path")" -- "$cur")) ;;
    choices:*) COMPREPLY=($(compgen -W "\${kind#choices:}" -- "$cur")) ;;
    connection|approval|session)
      local IFS=$'\\n'
      COMPREPLY=($(compgen -W "$("\${words[0]}" __complete "$kind" "\${_phigate_global[@]}" 2>/dev/null)" -- "$cur")) ;;
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    command) COMPREPLY=($(compgen -c -- "$cur")) ;;
  esac
  return 0
}
complete -F _phigate phigate
`;
}

function zshScript(specs: CommandSpec[]): string {
  const descs: string[] = ['_phigate_describe() {', '  case "$1" in'];
  for (const s of specs) {
    const items = [
      ...s.subcommands.map((c) => `${c.name.replace(/:/g, '\\:')}:${oneLine(c.description)}`),
    ];
    if (items.length) descs.push(`    ${sq(`${s.path}|subcommands`)}) reply=(${items.map(sq).join(' ')}) ;;`);
    const opts = s.options.flatMap((o) => o.flags.map((f) => `${f}:${oneLine(o.description)}`));
    if (opts.length) descs.push(`    ${sq(`${s.path}|options`)}) reply=(${opts.map(sq).join(' ')}) ;;`);
  }
  descs.push('    *) reply=() ;;', '  esac', '}');
  return `#compdef phigate
# zsh completion for phigate (generated by \`phigate completion zsh\` from the CLI itself; do not edit)
# Load: source <(phigate completion zsh) after compinit, or save it as _phigate in a directory on $fpath.
${caseFunctions(specs)}
${descs.join('\n')}

_phigate() {
  local cur="\${words[CURRENT]}" kind
  local -a reply vals
  _phigate_walk "\${(@)words[1,CURRENT-1]}"
  kind="$(_phigate_kind "$cur")"
  case "$kind" in
    options|subcommands)
      _phigate_describe "$_phigate_path|$kind"
      _describe -t "$kind" "phigate \${kind%s}" reply ;;
    choices:*) vals=(\${=kind#choices:}); compadd -a vals ;;
    connection|approval|session)
      vals=(\${(f)"$("\${words[1]}" __complete "$kind" "\${_phigate_global[@]}" 2>/dev/null)"})
      compadd -a vals ;;
    file) _files ;;
    dir) _files -/ ;;
    command) _command_names -e ;;
  esac
}

if [[ "\${funcstack[1]}" = _phigate || ( "\${funcstack[1]}" = '(eval)' && "\${funcstack[2]}" = _phigate ) ]]; then
  # autoloaded from $fpath (directly, or eval'd by completions/_phigate): this runs as the body of
  # _phigate, which has just been redefined above; complete now, as the first call expects
  _phigate "$@"
else
  compdef _phigate phigate
fi
`;
}

function fishScript(specs: CommandSpec[]): string {
  const L: string[] = [];
  L.push('# fish completion for phigate (generated by `phigate completion fish` from the CLI itself; do not edit)');
  L.push('# Load: phigate completion fish | source');
  L.push('function __phigate_subcommands', '    switch $argv[1]');
  for (const s of specs) {
    if (!s.subcommands.length) continue;
    L.push(`        case ${fq(s.path)}`);
    for (const c of s.subcommands) L.push(`            printf '%s\\t%s\\n' ${fq(c.name)} ${fq(oneLine(c.description))}`);
  }
  L.push('    end', 'end', '');
  L.push('function __phigate_options', '    switch $argv[1]');
  for (const s of specs) {
    L.push(`        case ${fq(s.path)}`);
    for (const o of s.options) for (const f of o.flags) L.push(`            printf '%s\\t%s\\n' ${fq(f)} ${fq(oneLine(o.description))}`);
  }
  L.push('    end', 'end', '');
  L.push('function __phigate_option_value', '    switch "$argv[1]|$argv[2]"');
  for (const s of specs) {
    for (const o of s.options) if (o.value) L.push(`        case ${o.flags.map((f) => fq(`${s.path}|${f}`)).join(' ')}`, `            echo ${fq(o.value)}`);
  }
  L.push('    end', 'end', '');
  L.push('function __phigate_argument', '    switch "$argv[1]|$argv[2]"');
  for (const s of specs) {
    s.args.forEach((a, i) => {
      // fish matches * in a quoted case pattern as a wildcard.
      L.push(`        case ${fq(a.variadic ? `${s.path}|*` : `${s.path}|${i}`)}`, `            echo ${fq(a.variadic ? `${a.kind}@${i}` : a.kind)}`);
    });
  }
  L.push('    end', 'end', '');
  L.push(`function __phigate_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l path ''
    set -l npos 0
    set -l pending ''
    set -l global
    set -l dashdash 0
    set -l i 2
    while test $i -le (count $tokens)
        set -l w $tokens[$i]
        set i (math $i + 1)
        if test $dashdash = 1
            set npos (math $npos + 1)
            continue
        end
        switch $w
            case '--'
                set dashdash 1
                continue
            case '--*=*'
                continue
            case '-*'
                if test "$w" = '-'
                    set npos (math $npos + 1)
                    continue
                end
                set -l takes (__phigate_option_value "$path" $w)
                if test -n "$takes"
                    if test $i -gt (count $tokens)
                        set pending $w
                        break
                    end
                    if contains -- $w --server --profile
                        set -a global $w $tokens[$i]
                    end
                    set i (math $i + 1)
                end
                continue
        end
        if test $npos = 0; and contains -- $w (__phigate_subcommands "$path" | string replace -r '\\t.*' '')
            set path (string trim -- "$path $w")
            continue
        end
        set npos (math $npos + 1)
    end
    set -l kind
    set -l subs (__phigate_subcommands "$path")
    if test -n "$pending"
        set kind (__phigate_option_value "$path" $pending)
    else if string match -q -- '-*' "$cur"
        set kind options
    else if test $npos = 0; and set -q subs[1]
        set kind subcommands
    else
        set kind (__phigate_argument "$path" $npos)
        if string match -q -- '*@*' "$kind"
            set -l parts (string split '@' -- $kind)
            if test $npos = $parts[2]
                set kind $parts[1]
            else
                set kind file
            end
        end
    end
    switch "$kind"
        case options
            __phigate_options "$path"
        case subcommands
            __phigate_subcommands "$path"
        case 'choices:*'
            string split ' ' -- (string replace 'choices:' '' -- $kind)
        case connection approval session
            $tokens[1] __complete $kind $global 2>/dev/null
        case file
            __fish_complete_path "$cur"
        case dir
            __fish_complete_directories "$cur"
        case command
            __fish_complete_command "$cur"
    end
end

complete -c phigate -f -a '(__phigate_complete)'
`);
  return L.join('\n');
}
