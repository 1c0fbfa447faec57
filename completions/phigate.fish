# fish completion for phigate. It loads the script of the phigate on your PATH (`phigate completion
# fish`), so commands and flags always match the installed CLI. Install: copy this file to
# ~/.config/fish/completions/phigate.fish.
if command -q phigate
    phigate completion fish 2>/dev/null | source
end
