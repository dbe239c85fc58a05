# bash completion for anycastctl(1), installed as
# /usr/share/bash-completion/completions/anycastctl.
#
# Commands and flags are those of `anycastctl -h` (cmd/anycastctl). VIP, check
# and peer names come from the running daemon: `anycastctl vips` (checks,
# peers) over the same socket or address as the command line being completed,
# with a 1s timeout and errors dropped, so a daemon that is not running (or
# not reachable) completes nothing rather than printing anything.

# _anycastctl_names COMMAND: the first column of `anycastctl COMMAND`'s table.
_anycastctl_names()
{
    local -a conn=()
    local i w
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --socket=* | -socket=* | --addr=* | -addr=* | --ca=* | -ca=* | \
                --cert=* | -cert=* | --key=* | -key=* | --server-name=* | \
                -server-name=* | --tls | -tls | --tls=* | -tls=*)
                conn+=("$w")
                ;;
            --socket | -socket | --addr | -addr | --ca | -ca | --cert | -cert | \
                --key | -key | --server-name | -server-name)
                conn+=("$w" "${words[i + 1]}")
                ((i++))
                ;;
        esac
    done
    anycastctl "${conn[@]}" --timeout 1s "$1" 2>/dev/null |
        awk 'NR > 1 && $1 != "-" { print $1 }'
}

_anycastctl()
{
    local cur prev words cword split
    _init_completion -s || return

    local commands="status vips checks peers routes fleet events drain undrain reload restart report help"
    local globals="--socket --addr --tls --ca --cert --key --server-name -o --timeout --version --help"

    case $prev in
        --socket | -socket | --ca | -ca | --cert | -cert | --key | -key)
            _filedir
            return
            ;;
        -o | --o)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return
            ;;
        --addr | -addr | --server-name | -server-name | --timeout | -timeout | \
            --reason | -reason | --for | -for | --message | -message | -n | --n)
            return
            ;;
    esac
    $split && return

    # The command and how many arguments it already has; flags (and the
    # values of those that take one) are skipped.
    local i w cmd="" nargs=0
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --socket | -socket | --addr | -addr | --ca | -ca | --cert | -cert | \
                --key | -key | --server-name | -server-name | -o | --o | \
                --timeout | -timeout | --reason | -reason | --for | -for | \
                --message | -message | -n | --n)
                ((i++))
                ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=$w
                else
                    ((nargs++))
                fi
                ;;
        esac
    done

    if [[ $cur == -* ]]; then
        local flags=$globals
        case $cmd in
            checks) flags+=" -n" ;;
            events) flags+=" -f" ;;
            drain) flags+=" --reason --for" ;;
            report) flags+=" --message" ;;
        esac
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi

    case $cmd,$nargs in
        vips,0 | drain,0 | undrain,0 | fleet,0)
            COMPREPLY=($(compgen -W "$(_anycastctl_names vips)" -- "$cur"))
            ;;
        checks,0 | report,0)
            COMPREPLY=($(compgen -W "$(_anycastctl_names checks)" -- "$cur"))
            ;;
        peers,0 | routes,0)
            COMPREPLY=($(compgen -W "$(_anycastctl_names peers)" -- "$cur"))
            __ltrim_colon_completions "$cur" # IPv6 addresses
            ;;
        report,1)
            COMPREPLY=($(compgen -W 'ok failing' -- "$cur"))
            ;;
    esac
} &&
    complete -F _anycastctl anycastctl

# ex: filetype=sh
