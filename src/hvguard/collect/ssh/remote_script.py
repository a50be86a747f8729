"""The text of the read-only POSIX ``sh`` script the SSH transport runs on a target (see
:mod:`hvguard.collect.ssh.script` for the protocol it speaks and how its request is built)."""

from __future__ import annotations

PROTOCOL = "1"
#: Domains per ``virsh dumpxml`` batch (a single argument may not exceed 128 KiB on Linux).
DUMPXML_BATCH = 400

# The script. POSIX sh only (dash, busybox ash, bash --posix): no arrays, no `local`, no [[ ]], no
# $'…'. Function variables are global in sh, so each function uses its own prefix (_fp, _lp, …).
REMOTE_SCRIPT = r"""# hvguard remote collection script: reads files, runs read-only commands, writes nothing.
export LC_ALL=C
unset LANGUAGE
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export PATH
NL='
'
HAVE_HEADC=0; head -c 1 /dev/null >/dev/null 2>&1 </dev/null && HAVE_HEADC=1
HAVE_TIMEOUT=0; command -v timeout >/dev/null 2>&1 && HAVE_TIMEOUT=1
HAVE_STAT=0; stat -L --printf '' / >/dev/null 2>&1 </dev/null && HAVE_STAT=1
HAVE_TAR=0; command -v tar >/dev/null 2>&1 && HAVE_TAR=1
HAVE_FINDP=0; find / -maxdepth 0 -printf '' >/dev/null 2>&1 </dev/null && HAVE_FINDP=1
LINKS=$NL
META=
BATCH=
B=
CAP=

rec() {
    printf '\n%s:%s\0' "$B" "$1"; shift
    for _rf in "$@"; do printf '%s\0' "$_rf"; done
}

meta() {
    case $1 in *"$NL"*) return ;; esac
    META="$META$1$NL"
}

reason() {
    _rm=$1; _rm=${_rm%"$NL"}; _rm=${_rm##*"$NL"}
    printf '%s' "${_rm##*: }"
}

tmo() {
    if [ "$HAVE_TIMEOUT" = 1 ]; then timeout -k 2 "$@"; else shift; "$@"; fi
}

readf() {
    if [ "$HAVE_HEADC" = 1 ]; then head -c "$CAP" -- "$1"; else cat -- "$1"; fi
}

content() {
    rec F "$1"; meta "$1"
    if ! readf "$1" 2>/dev/null </dev/null; then
        _ce=$(readf "$1" 2>&1 >/dev/null </dev/null)
        rec R "$1" "$(reason "$_ce")"
    fi
}

unreadable() {
    rec U "$1" "$2"; meta "$1"
}

special() {
    # Not a regular file (a FIFO would block a read forever, a device never end): refused by its type,
    # worded as hvguard's own reader words it.
    if [ -p "$1" ]; then _sk='a FIFO'; elif [ -c "$1" ]; then _sk='a character device'
    elif [ -b "$1" ]; then _sk='a block device'; elif [ -S "$1" ]; then _sk='a socket'
    else _sk='a special file'; fi
    rec R "$1" "not a regular file ($_sk)"; meta "$1"
}

link() {
    # A symbolic link: its text is read at the end, for every link at once (one process).
    case $1 in *"$NL"*) return 0 ;; esac
    case $LINKS in *"$NL$1$NL"*) return 0 ;; esac
    LINKS="$LINKS$1$NL"
}

links() {
    [ "$LINKS" != "$NL" ] || return 0
    _li=$IFS; IFS=$NL; set -f
    if [ "$HAVE_FINDP" = 1 ]; then
        find $LINKS -maxdepth 0 -printf "\n$B:L\0%p\0%l\0" 2>/dev/null </dev/null
    else
        for _lp in $LINKS; do
            _lt=$(readlink -- "$_lp" 2>/dev/null </dev/null) && rec L "$_lp" "$_lt"
        done
    fi
    set +f; IFS=$_li
}

fetch() {
    # A path's link text (if it is a link), then what it is or points at: a directory's existence, a
    # file's bytes (read through the link; hvguard places them where the link points).
    _fp=$1
    if [ -L "$_fp" ]; then link "$_fp"; fi
    if [ -d "$_fp" ]; then
        rec d "$_fp"; meta "$_fp"
    elif [ -e "$_fp" ]; then
        if [ ! -f "$_fp" ]; then
            special "$_fp"
        elif [ ! -r "$_fp" ]; then
            unreadable "$_fp" "Permission denied"
        elif batchable "$_fp"; then
            rec B "$_fp"; meta "$_fp"; BATCH="$BATCH$_fp$NL"
        else
            content "$_fp"
        fi
    fi
}

batchable() {
    # Pseudo-files report sizes tar cannot trust; tar rewrites names holding "..".
    case $1 in /proc/* | /sys/* | /dev/* | *"$NL"* | */../* | */./*) return 1 ;; esac
    [ "$HAVE_TAR" = 1 ]
}

archive() {
    [ -n "$BATCH" ] || return 0
    # tar has no size cap: a file over the cap is read with head instead (the collectors then
    # report it as too large), so one huge file cannot swell the answer.
    _ai=$IFS; IFS=$NL; set -f
    _ab=$NL$(find -H $BATCH -size +"$CAP"c -print 2>/dev/null </dev/null)$NL
    set +f; IFS=$_ai
    if [ "$_ab" != "$NL$NL" ]; then
        _an=
        while IFS= read -r _af; do
            [ -n "$_af" ] || continue
            case $_ab in *"$NL$_af$NL"*) content "$_af" ;; *) _an="$_an$_af$NL" ;; esac
        done <<HVG_BATCH
$BATCH
HVG_BATCH
        BATCH=$_an
        [ -n "$BATCH" ] || return 0
    fi
    rec A
    _ai=$IFS; IFS=$NL; set -f
    tar chf - -- $BATCH 2>/dev/null </dev/null
    set +f; IFS=$_ai
}

top() {
    for _te in /*; do
        if [ -L "$_te" ]; then
            link "$_te"
            if [ -d "$_te" ]; then rec d "$_te"; fi
        elif [ -d "$_te" ]; then
            rec d "$_te"; meta "$_te"
        fi
    done
}

word() {
    _wp=$1
    if [ -L "$_wp" ]; then fetch "$_wp"; return 0; fi
    [ -e "$_wp" ] || return 0
    if [ ! -r "$_wp" ]; then unreadable "$_wp" "Permission denied"; return 0; fi
    _wv=; _wn=0
    if { IFS= read -r _wv <"$_wp"; } 2>/dev/null; then _wn=1; fi
    if [ "$_wn" = 0 ] && [ -z "$_wv" ]; then content "$_wp"; return 0; fi
    rec F "$_wp"; meta "$_wp"
    printf '%s' "$_wv"
    if [ "$_wn" = 1 ]; then printf '\n'; fi
}

statonly() {
    if [ -L "$1" ]; then link "$1"; fi
    if [ -d "$1" ]; then
        rec d "$1"; meta "$1"
    elif [ -e "$1" ]; then
        rec S "$1"; meta "$1"
    fi
}

listing() {
    _dd=$1
    if [ -L "$_dd" ]; then link "$_dd"; fi
    [ -d "$_dd" ] || return 0
    if [ ! -r "$_dd" ] || [ ! -x "$_dd" ]; then unreadable "$_dd" "Permission denied"; return 0; fi
    rec D "$_dd"; meta "$_dd"
    for _de in "$_dd"/* "$_dd"/.[!.]* "$_dd"/..?*; do
        if [ -L "$_de" ]; then printf 'l%s\0' "${_de##*/}"
        elif [ -d "$_de" ]; then printf 'd%s\0' "${_de##*/}"
        elif [ -e "$_de" ]; then printf 'f%s\0' "${_de##*/}"
        fi
    done
}

lines() {
    _np=$1
    [ -e "$_np" ] || return 0
    if [ ! -f "$_np" ]; then special "$_np"; return 0; fi
    if [ ! -r "$_np" ]; then unreadable "$_np" "Permission denied"; return 0; fi
    if ! _nc=$(wc -l <"$_np" 2>/dev/null); then
        _ne=$(wc -l <"$_np" 2>&1 >/dev/null)
        unreadable "$_np" "$(reason "$_ne")"
        return 0
    fi
    _nl=$(tail -c 1 -- "$_np" 2>/dev/null </dev/null | od -An -to1)
    rec N "$_np" "$_nc" "$_nl"; meta "$_np"
}

procs() {
    _px=$(ls -l /proc/[0-9]*/exe 2>/dev/null </dev/null \
        | grep -E '/(qemu-system[^/]*|qemu-kvm[^/]*|kvm)( \(deleted\))?$')
    _pids=' '
    while IFS= read -r _pl; do
        case $_pl in *' /proc/'*'/exe -> '*) ;; *) continue ;; esac
        _pp=${_pl#*' /proc/'}; _pp=${_pp%%'/exe -> '*}
        case $_pp in '' | *[!0-9]*) continue ;; esac
        _pids="$_pids$_pp "
        rec L "/proc/$_pp/exe" "${_pl#*'/exe -> '}"
    done <<HVG_EXES
$_px
HVG_EXES
    _pc=$(grep -lE '^(qemu-system.*|qemu-kvm.*|kvm)$' /proc/[0-9]*/comm 2>/dev/null </dev/null)
    for _pf in $_pc; do
        _pp=${_pf#/proc/}; _pp=${_pp%/comm}
        case $_pp in '' | *[!0-9]*) continue ;; esac
        case $_pids in *" $_pp "*) ;; *) _pids="$_pids$_pp " ;; esac
    done
    for _pp in $_pids; do
        [ -d "/proc/$_pp" ] || continue
        rec d "/proc/$_pp"
        word "/proc/$_pp/comm"
        fetch "/proc/$_pp/cmdline"
        fetch "/proc/$_pp/status"
    done
}

sockowners() {
    _kx=$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname 'socket:*' -printf '%p %l\n' \
        2>/dev/null </dev/null)
    _kp=' '
    while IFS= read -r _kl; do
        _kf=${_kl%% *}; _kt=${_kl#* }
        case $_kf in /proc/*/fd/*) ;; *) continue ;; esac
        case $_kt in 'socket:['*']') ;; *) continue ;; esac
        _kd=${_kf#/proc/}; _kd=${_kd%%/*}
        case $_kd in '' | *[!0-9]*) continue ;; esac
        rec L "$_kf" "$_kt"
        case $_kp in *" $_kd "*) ;; *) _kp="$_kp$_kd "; word "/proc/$_kd/comm" ;; esac
    done <<HVG_SOCKETS
$_kx
HVG_SOCKETS
}

each() {
    _eo=$1; _eg=$2
    case $_eg in
        *[*?[]*) ;;
        *) one "$_eo" "$_eg"; return 0 ;;
    esac
    # The directories a glob looks in exist even when nothing matches: say so (collectors ask is_dir).
    _ep=${_eg%%[*?[]*}; _ep=${_ep%/*}
    if [ -n "$_ep" ] && [ -d "$_ep" ]; then fetch "$_ep"; fi
    _ei=$IFS; IFS=
    set -- ${_eg%/*}
    IFS=$_ei
    for _em in "$@"; do
        if [ "$_em" != "$_ep" ] && [ -d "$_em" ]; then fetch "$_em"; fi
    done
    IFS=
    set -- $_eg
    IFS=$_ei
    for _em in "$@"; do
        if [ -e "$_em" ] || [ -L "$_em" ]; then one "$_eo" "$_em"; fi
    done
}

one() {
    case $1 in
        F) fetch "$2" ;;
        W) word "$2" ;;
        S) statonly "$2" ;;
        D) listing "$2" ;;
        N) lines "$2" ;;
    esac
}

runcmd() {
    _cn=$1; _ct=$2; shift 2
    if ! command -v "$1" >/dev/null 2>&1; then rec X "$_cn" "$1 is not installed"; return 0; fi
    rec O "$_cn"
    _co=$(tmo "$_ct" "$@" 2>&1 >&3 3>&- </dev/null; printf '/%s' "$?")
    rec E "$_cn" "${_co##*/}" "$HAVE_TIMEOUT"
    printf '%s' "${_co%/*}"
}

vrun() {
    rec e "$1"
    if [ "$1" = ro ]; then
        _vo=$(tmo 300 virsh -r -c "$URI" "$2" 2>&3 3>&- </dev/null; printf '/%s' "$?")
    else
        _vo=$(tmo 300 virsh -c "$URI" "$2" 2>&3 3>&- </dev/null; printf '/%s' "$?")
    fi
    _vrc=${_vo##*/}; _vo=${_vo%/*}
}

stored() {
    fetch /etc/libvirt/qemu
    for _sf in /etc/libvirt/qemu/*.xml; do
        if [ -e "$_sf" ] || [ -L "$_sf" ]; then fetch "$_sf"; fi
    done
}

libvirt() {
    URI=$1; _M="HVGM$B"
    if ! command -v virsh >/dev/null 2>&1; then rec V none ''; stored; return 0; fi
    _vq="echo $_M uri; uri; echo $_M version; version; echo $_M hostname; hostname;"
    _vq="$_vq echo $_M nodeinfo; nodeinfo; echo $_M capabilities; capabilities;"
    _vq="$_vq echo $_M all; list --all --uuid; echo $_M persistent; list --all --persistent --uuid;"
    _vq="$_vq echo $_M end"
    _vm=rw; vrun rw "$_vq"
    case $_vo in "$_M uri$NL"*) ;; *) _vm=ro; vrun ro "$_vq" ;; esac
    case $_vo in "$_M uri$NL"*) ;; *) rec V none ''; stored; return 0 ;; esac
    rec V "$_vm" "$_vrc"; printf '%s' "$_vo"
    _vs=; [ "$_vm" = rw ] && _vs=--security-info
    _vd=; _vk=0; _vsec=
    while IFS= read -r _vl; do
        case $_vl in "$_M "*) _vsec=${_vl#"$_M "}; continue ;; esac
        [ "$_vsec" = all ] || continue
        case $_vl in '' | *[!0-9a-fA-F-]*) continue ;; esac
        _vd="$_vd echo $_M dom $_vl; dumpxml $_vs $_vl;"
        _vk=$((_vk + 1))
        if [ "$_vk" -ge __BATCH__ ]; then vdom "$_vm" "$_vd"; _vd=; _vk=0; fi
    done <<HVG_VIRSH
$_vo
HVG_VIRSH
    if [ -n "$_vd" ]; then vdom "$_vm" "$_vd"; fi
}

vdom() {
    vrun "$1" "$2 echo $_M end"
    rec VD "$1" "$_vrc"; printf '%s' "$_vo"
}

metadata() {
    [ -n "$META" ] || return 0
    [ "$HAVE_STAT" = 1 ] || return 0
    rec M
    _mi=$IFS; IFS=$NL; set -f
    stat -L --printf '%n\0%f %u %g %.9Y %s\0' -- $META 2>/dev/null </dev/null
    if command -v getfacl >/dev/null 2>&1; then
        rec G
        getfacl --skip-base --absolute-names -- $META 2>/dev/null </dev/null
    fi
    set +f; IFS=$_mi
}

# Thousands of small records would each become an SSH packet; dd (POSIX) regroups them in 64 KiB blocks.
blocks() {
    if command -v dd >/dev/null 2>&1; then dd obs=65536 2>/dev/null; else cat; fi
}

main() {
    exec 3>&1
    IFS= read -r B || exit 3
    case $B in '' | *[!0-9a-f]*) exit 3 ;; esac
    IFS= read -r CAP || exit 3
    case $CAP in '' | *[!0-9]*) exit 3 ;; esac
    rec H __PROTOCOL__ "$(id -u 2>/dev/null)"
    while IFS= read -r _op && IFS= read -r _arg; do
        case $_op in
            T) top ;;
            F | W | S | D | N) each "$_op" "$_arg" ;;
            P) procs ;;
            K) sockowners ;;
            C)
                IFS= read -r _to; IFS= read -r _n
                case $_to$_n in '' | *[!0-9]*) exit 3 ;; esac
                set --
                while [ "$_n" -gt 0 ]; do IFS= read -r _a; set -- "$@" "$_a"; _n=$((_n - 1)); done
                runcmd "$_arg" "$_to" "$@"
                ;;
            V) libvirt "$_arg" ;;
            Z) break ;;
            *) exit 3 ;;
        esac
    done
    links
    archive
    metadata
    rec Z
}
""".replace("__BATCH__", str(DUMPXML_BATCH)).replace("__PROTOCOL__", PROTOCOL)
