# bash completion for phigate. It loads the script of the phigate on your PATH (`phigate completion
# bash`), so commands and flags always match the installed CLI. Install: copy this file to
# ~/.local/share/bash-completion/completions/phigate, or source it from ~/.bashrc.
if command -v phigate >/dev/null 2>&1; then
  eval "$(phigate completion bash 2>/dev/null)"
fi
