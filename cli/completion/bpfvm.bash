# bash completion for bpfvm (bpftool's grammar).     source cli/completion/bpfvm.bash
#
# Completes options, objects, commands, the PROG/MAP selectors (id, name, tag,
# pinned) with the ids and names of loaded programs and maps (asked from the
# daemon, only when one is running), keywords of each command, and files.

_bpfvm_ids() {
    # $1: prog|map, $2: id|name|tag. Quiet and fast: only when a daemon answers.
    local field=$2
    bpfvm -j "$1" show 2>/dev/null | tr ',{}[]' '\n\n\n\n\n' |
        sed -n "s/^\"$field\":\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p"
}

_bpfvm() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local opts="-j --json -p --pretty -d --debug --state-dir"
    local objects="batch prog map net btf objdump verify conformance daemon version help"

    case $prev in
        --state-dir)
            COMPREPLY=($(compgen -d -- "$cur")); return ;;
        id)
            local kind=prog
            [[ " ${words[*]} " == *" map "* ]] && kind=map
            COMPREPLY=($(compgen -W "$(_bpfvm_ids $kind id)" -- "$cur")); return ;;
        name)
            local kind=prog
            [[ " ${words[*]} " == *" map "* ]] && kind=map
            COMPREPLY=($(compgen -W "$(_bpfvm_ids $kind name)" -- "$cur")); return ;;
        tag)
            COMPREPLY=($(compgen -W "$(_bpfvm_ids prog tag)" -- "$cur")); return ;;
        pinned|data_in|data_out|ctx_in|ctx_out|file|pinmaps|section|kconfig)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        type)
            if [[ " ${words[*]} " == *" map "* ]]; then
                COMPREPLY=($(compgen -W "hash array prog_array perf_event_array percpu_hash percpu_array \
                    stack_trace cgroup_array lru_hash lru_percpu_hash lpm_trie array_of_maps hash_of_maps \
                    devmap devmap_hash sockmap cpumap xskmap sockhash cgroup_storage reuseport_sockarray \
                    percpu_cgroup_storage queue stack sk_storage ringbuf bloom_filter" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "socket kprobe kretprobe classifier action tracepoint \
                    raw_tracepoint xdp perf_event cgroup/skb syscall" -- "$cur"))
            fi
            return ;;
        dev)
            COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
    esac

    # Find the object and the command after the options.
    local i obj="" cmd="" n=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --state-dir) ((i++)) ;;
            -*) ;;
            *)
                if [ -z "$obj" ]; then obj=${words[i]}; elif [ -z "$cmd" ]; then cmd=${words[i]}; fi
                ((n++)) ;;
        esac
    done

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur")); return
    fi
    if [ -z "$obj" ]; then
        COMPREPLY=($(compgen -W "$objects" -- "$cur")); return
    fi

    local selectors="id name tag pinned"
    case $obj in
        prog)
            if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "show list help dump pin load loadall tracelog run" -- "$cur")); return
            fi
            case $cmd in
                show|list|pin) COMPREPLY=($(compgen -W "$selectors" -- "$cur")) ;;
                dump)
                    if [ "$n" -eq 2 ]; then COMPREPLY=($(compgen -W "xlated jited" -- "$cur"))
                    else COMPREPLY=($(compgen -W "$selectors opcodes linum visual" -- "$cur")); fi ;;
                load|loadall)
                    if [ "$n" -le 3 ]; then COMPREPLY=($(compgen -f -- "$cur"))
                    else COMPREPLY=($(compgen -W "type pinmaps kconfig btf" -- "$cur")); fi ;;
                run) COMPREPLY=($(compgen -W "$selectors data_in data_out data_size_out ctx_in ctx_out ctx_size_out repeat" -- "$cur")) ;;
                tracelog) COMPREPLY=($(compgen -W "--max-lines --timeout" -- "$cur")) ;;
            esac ;;
        batch)
            [ -z "$cmd" ] && COMPREPLY=($(compgen -W "file help" -- "$cur")) ;;
        map)
            if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "show list help dump update lookup getnext delete pin create freeze event_pipe peek push pop enqueue dequeue" -- "$cur")); return
            fi
            case $cmd in
                create)
                    if [ "$n" -le 2 ]; then COMPREPLY=($(compgen -f -- "$cur"))
                    else COMPREPLY=($(compgen -W "type key value entries name flags inner_map dev" -- "$cur")); fi ;;
                update) COMPREPLY=($(compgen -W "$selectors key value hex any exist noexist" -- "$cur")) ;;
                push|enqueue) COMPREPLY=($(compgen -W "$selectors value hex" -- "$cur")) ;;
                lookup|getnext|delete) COMPREPLY=($(compgen -W "$selectors key hex" -- "$cur")) ;;
                event_pipe) COMPREPLY=($(compgen -W "$selectors cpu index --max-events --timeout" -- "$cur")) ;;
                *) COMPREPLY=($(compgen -W "$selectors" -- "$cur")) ;;
            esac ;;
        net)
            if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "show list attach detach help" -- "$cur")); return
            fi
            case $cmd in
                attach)
                    if [ "$n" -eq 2 ]; then COMPREPLY=($(compgen -W "xdp xdpgeneric" -- "$cur"))
                    else COMPREPLY=($(compgen -W "$selectors dev overwrite" -- "$cur")); fi ;;
                detach)
                    if [ "$n" -eq 2 ]; then COMPREPLY=($(compgen -W "xdp xdpgeneric" -- "$cur"))
                    else COMPREPLY=($(compgen -W "dev" -- "$cur")); fi ;;
                *) COMPREPLY=($(compgen -W "dev" -- "$cur")) ;;
            esac ;;
        btf)
            if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "show list help dump" -- "$cur")); return
            fi
            if [ "$n" -le 2 ]; then COMPREPLY=($(compgen -W "id file prog map" -- "$cur"))
            else COMPREPLY=($(compgen -W "format raw c" -- "$cur")); fi ;;
        daemon)
            [ -z "$cmd" ] && COMPREPLY=($(compgen -W "start stop status help" -- "$cur")) ;;
        verify)
            if [ -z "$cmd" ]; then COMPREPLY=($(compgen -f -- "$cur"))
            else COMPREPLY=($(compgen -W "section prog type flags unprivileged btf" -- "$cur")); fi ;;
        objdump)
            COMPREPLY=($(compgen -W "-d -S" -- "$cur") $(compgen -f -- "$cur")) ;;
        conformance)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}

complete -F _bpfvm bpfvm
