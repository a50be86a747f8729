"""Configuration of ``hvguard watch``: a YAML file (``--config``) plus command-line overrides.

Example (every key optional except what a channel needs)::

    uris: [qemu:///system]
    state: /var/lib/hvguard/watch.sqlite
    profile: /etc/hvguard/profile.yaml
    reconnect_max_s: 30          # cap of the reconnect backoff after libvirtd goes away
    resync_interval_s: 600       # full comparison against the state even without events (0 = never)
    poll_interval_s: 5           # compare every VM this often; default 0 (off) for a local URI whose
                                 # config directory is watched, 5 for remote URIs
    retry_max_s: 300             # cap of the delivery retry backoff of a channel that is down
    queue_max: 10000             # undelivered notifications kept per channel (oldest dropped loudly)
    notify:
      webhook:
        - url: https://hooks.example.org/hvguard
          secret_file: /etc/hvguard/webhook.key      # or secret_env: HVGUARD_WEBHOOK_SECRET
          ca_file: /etc/hvguard/private-ca.pem       # optional; the system CAs otherwise
      syslog:
        - target: tls://logs.example.org:6514        # local | local:/dev/log | udp://h:p | tcp://h:p | tls://h:p
          ca_file: /etc/hvguard/log-ca.pem
          cert_file: /etc/hvguard/client.pem         # optional client certificate (mutual TLS)
          key_file: /etc/hvguard/client.key
      email:
        - host: smtp.example.org
          port: 587
          from: hvguard@example.org
          to: [virt-admins@example.org]
          username: hvguard
          password_file: /etc/hvguard/smtp.pass      # or password_env: NAME

Secrets (HMAC key, SMTP password) come only from files or environment variables, are held in
:class:`Secret` (whose ``repr`` hides the value) and never reach a log line or a notification.
Every problem is a :class:`ConfigError` with a one-line message (the CLI exits 2).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import msgspec

from hvguard.yamlsafe import YamlInputError, load_yaml_file, read_input_file

DEFAULT_URI = "qemu:///system"
#: A webhook's HMAC secret file is a line of text; more than this is not one.
SECRET_FILE_LIMIT = 64 * 1024
STATE_FILE_NAME = "watch.sqlite"
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip


class ConfigError(ValueError):
    """The watch configuration cannot be used; the message is one line."""


def _host_port(parts: SplitResult) -> str:
    """``HOST[:PORT]`` of ``parts`` without any ``user:password@`` (IPv6 addresses in brackets)."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return host if port is None else f"{host}:{port}"


def redact_url(url: str) -> str:
    """``url`` as messages and logs may show it: a password in ``user:password@`` and every query
    value (where services put tokens) become ``***``; the user name, host, port and path stay."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = _host_port(parts)
    if parts.username is not None:
        netloc = f"{parts.username}{':***' if parts.password is not None else ''}@{netloc}"
    elif "@" in parts.netloc:
        netloc = f"***@{netloc}"
    query = parts.query
    if query:
        query = urlencode([(k, "***") for k, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def url_without_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` with ``user:password@`` removed, and that user name and password (percent-decoded), if
    any: the request goes to the URL without them and sends them as HTTP Basic authentication."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    bare = urlunsplit((parts.scheme, _host_port(parts), parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


class Secret:
    """A secret value (HMAC key, password) whose ``repr``/``str`` never show it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: bytes, source: str) -> None:
        self._value = value
        self.source = source
        """Where it came from (``file:/path`` or ``env:NAME``), safe to log."""

    def reveal(self) -> bytes:
        """The secret bytes, for the one place that needs them."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source}, ***)"

    __str__ = __repr__


# --------------------------------------------------------------------------------------------------
# The file format (decoded strictly: an unknown key is an error, not silently ignored)
# --------------------------------------------------------------------------------------------------
class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class WebhookFile(_Strict):
    """``notify.webhook[]`` as written in the file."""

    url: str
    secret_file: str | None = None
    secret_env: str | None = None
    ca_file: str | None = None
    timeout_s: float = 10.0


class SyslogFile(_Strict):
    """``notify.syslog[]`` as written in the file."""

    target: str = "local"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    facility: str = "daemon"
    app_name: str = "hvguard"
    sd_id: str = "hvguard@32473"
    timeout_s: float = 10.0


class EmailFile(_Strict):
    """``notify.email[]`` as written in the file (``from`` is spelled ``sender`` in code)."""

    host: str
    sender: str = msgspec.field(name="from")
    to: list[str]
    port: int = 587
    tls: Literal["starttls", "implicit"] = "starttls"
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    timeout_s: float = 20.0


class NotifyFile(_Strict):
    """``notify:`` as written in the file."""

    webhook: list[WebhookFile] = []
    syslog: list[SyslogFile] = []
    email: list[EmailFile] = []


class WatchFile(_Strict):
    """The whole configuration file."""

    uris: list[str] = []
    state: str | None = None
    profile: str | None = None
    reconnect_max_s: float = 30.0
    resync_interval_s: float = 600.0
    poll_interval_s: float | None = None
    retry_max_s: float = 300.0
    queue_max: int = 10000
    notify: NotifyFile = msgspec.field(default_factory=NotifyFile)


# --------------------------------------------------------------------------------------------------
# The resolved configuration the watcher runs with
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookChannel:
    """A webhook: HTTPS POST of the JSON payload, signed with HMAC-SHA256."""

    url: str
    secret: Secret
    ca_file: Path | None
    timeout_s: float

    @property
    def key(self) -> str:
        """Stable channel id (outbox rows are kept per channel across restarts), safe to log: many
        webhook services put their token in the path, so only scheme, host and port are shown (never a
        ``user:password@``), plus a
        short hash of the whole URL to tell two hooks on one host apart."""
        parts = urlsplit(self.url)
        digest = hashlib.sha256(self.url.encode("utf-8")).hexdigest()[:8]
        return f"webhook:{parts.scheme}://{_host_port(parts)}/…#{digest}"


@dataclass(frozen=True)
class SyslogChannel:
    """An RFC 5424 syslog destination."""

    transport: Literal["local", "udp", "tcp", "tls"]
    address: str
    """Socket path for ``local``; host name or address otherwise."""
    port: int
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    facility: int
    app_name: str
    sd_id: str
    timeout_s: float

    @property
    def key(self) -> str:
        """Stable channel id."""
        if self.transport == "local":
            return f"syslog:local:{self.address}"
        return f"syslog:{self.transport}://{self.address}:{self.port}"


@dataclass(frozen=True)
class EmailChannel:
    """An SMTP destination; TLS (STARTTLS or implicit) is mandatory."""

    host: str
    port: int
    tls: Literal["starttls", "implicit"]
    sender: str
    to: tuple[str, ...]
    username: str | None
    password: Secret | None
    ca_file: Path | None
    timeout_s: float

    @property
    def key(self) -> str:
        """Stable channel id."""
        return f"email:{self.host}:{self.port}:{','.join(self.to)}"


Channel = WebhookChannel | SyslogChannel | EmailChannel


@dataclass(frozen=True)
class WatchConfig:
    """Everything ``hvguard watch`` runs with, validated and with secrets resolved."""

    uris: tuple[str, ...]
    state_path: Path
    profile_path: Path | None
    channels: tuple[Channel, ...]
    reconnect_max_s: float = 30.0
    resync_interval_s: float = 600.0
    poll_interval_s: float | None = None
    """None: automatic (off where the config directory is watched, 5 s otherwise)."""
    retry_max_s: float = 300.0
    queue_max: int = 10000
    warnings: tuple[str, ...] = field(default=())
    """Things worth a warning at start (e.g. a secret file readable by others)."""


@dataclass(frozen=True)
class CliOverrides:
    """Command-line options that add to or override the file."""

    uris: tuple[str, ...] = ()
    config_path: Path | None = None
    state_path: Path | None = None
    profile_path: Path | None = None
    webhook_url: str | None = None
    webhook_secret_file: Path | None = None
    webhook_ca: Path | None = None
    syslog_target: str | None = None
    syslog_ca: Path | None = None
    reconnect_max_s: float | None = None
    retry_max_s: float | None = None
    poll_interval_s: float | None = None


def default_state_path() -> Path:
    """Where the state lives when not configured: systemd's ``$STATE_DIRECTORY`` (the unit's
    ``StateDirectory=hvguard``), else ``/var/lib/hvguard`` for root, else the user's state dir."""
    state_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state_dir:
        return Path(state_dir) / STATE_FILE_NAME
    if os.geteuid() == 0:
        return Path("/var/lib/hvguard") / STATE_FILE_NAME
    import platformdirs

    return Path(platformdirs.user_state_dir("hvguard")) / STATE_FILE_NAME


def _read_file_config(path: Path) -> WatchFile:
    try:
        data = load_yaml_file(path)
    except YamlInputError as exc:
        raise ConfigError(f"config {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping, not {type(data).__name__}")
    try:
        return msgspec.convert(data, WatchFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config {path}: {' '.join(str(exc).split())}") from exc


def _secret_from(file: str | Path | None, env: str | None, what: str, warnings: list[str]) -> Secret | None:
    if file is not None and env is not None:
        raise ConfigError(f"{what}: give either a secret file or an environment variable, not both")
    if file is not None:
        path = Path(file)
        try:
            mode = path.stat().st_mode
            value = read_input_file(path, limit=SECRET_FILE_LIMIT)
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read secret file {path}: {exc.strerror or exc}") from exc
        except YamlInputError as exc:  # a FIFO, a device, or far too large for a secret
            raise ConfigError(f"{what}: secret file {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"{what}: secret file {path} is readable by group or others (chmod 600 it)")
        value = value.rstrip(b"\r\n")
        if not value:
            raise ConfigError(f"{what}: secret file {path} is empty")
        return Secret(value, f"file:{path}")
    if env is not None:
        raw = os.environ.get(env)
        if not raw:
            raise ConfigError(f"{what}: environment variable {env} is not set or empty")
        return Secret(raw.encode(), f"env:{env}")
    return None


def _existing(path: str | Path | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what}: {p} is not a readable file")
    return p


def _timeout(value: float, what: str) -> float:
    if not 0 < value <= 600:
        raise ConfigError(f"{what}: timeout_s must be > 0 and <= 600, not {value}")
    return value


def _split(url: str, what: str) -> SplitResult:
    """``urlsplit`` of a configured URL; an unparsable one (an unclosed "[") is a :class:`ConfigError`."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"{what}: {url!r} is not a valid URL ({exc})") from None


def _webhook(url: str, secret: Secret | None, ca: Path | None, timeout_s: float, what: str) -> WebhookChannel:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ConfigError(f"{what}: webhook url {redact_url(url)!r} cannot be parsed: {exc}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"{what}: webhook url must be https://HOST/…, not {redact_url(url)!r} (plain HTTP is refused)"
        )
    if secret is None:
        raise ConfigError(f"{what}: a webhook needs an HMAC secret (secret_file or secret_env)")
    return WebhookChannel(url=url, secret=secret, ca_file=ca, timeout_s=_timeout(timeout_s, what))


def parse_syslog_target(target: str, what: str) -> tuple[Literal["local", "udp", "tcp", "tls"], str, int]:
    """``local`` / ``local:/path`` / ``udp://h:p`` / ``tcp://h:p`` / ``tls://h:p`` → (transport,
    address, port); the default ports are 514 (udp, tcp) and 6514 (tls, RFC 5425)."""
    if target == "local":
        return "local", "/dev/log", 0
    if target.startswith("local:"):
        path = target.removeprefix("local:")
        if not path.startswith("/"):
            raise ConfigError(f"{what}: local syslog socket must be an absolute path, not {path!r}")
        return "local", path, 0
    parts = _split(target, what)
    defaults = {"udp": 514, "tcp": 514, "tls": 6514}
    if parts.scheme not in defaults or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"{what}: syslog target must be local, local:/PATH, udp://HOST:PORT, tcp://HOST:PORT or "
            f"tls://HOST:PORT, not {target!r}"
        )
    try:
        port = parts.port or defaults[parts.scheme]
    except ValueError as exc:
        raise ConfigError(f"{what}: bad port in syslog target {target!r}") from exc
    transport: Literal["udp", "tcp", "tls"] = parts.scheme  # type: ignore[assignment]
    return transport, parts.hostname, port


def _syslog(s: SyslogFile, what: str) -> SyslogChannel:
    transport, address, port = parse_syslog_target(s.target, what)
    facility = SYSLOG_FACILITIES.get(s.facility)
    if facility is None:
        raise ConfigError(f"{what}: unknown syslog facility {s.facility!r}")
    for name, value in (("app_name", s.app_name), ("sd_id", s.sd_id)):
        # RFC 5424: PRINTUSASCII without space; SD-NAME also without '=', ']', '"'.
        if not value or len(value) > 48 or any(not (33 <= ord(c) <= 126) or c in '=]"' for c in value):
            raise ConfigError(f"{what}: {name} {value!r} is not a valid RFC 5424 name")
    if transport != "tls" and (s.ca_file or s.cert_file or s.key_file):
        raise ConfigError(f"{what}: ca_file/cert_file/key_file only apply to a tls:// syslog target")
    if (s.cert_file is None) != (s.key_file is None):
        raise ConfigError(f"{what}: give both cert_file and key_file for a client certificate")
    return SyslogChannel(
        transport=transport,
        address=address,
        port=port,
        ca_file=_existing(s.ca_file, what),
        cert_file=_existing(s.cert_file, what),
        key_file=_existing(s.key_file, what),
        facility=facility,
        app_name=s.app_name,
        sd_id=s.sd_id,
        timeout_s=_timeout(s.timeout_s, what),
    )


def _email(e: EmailFile, what: str, warnings: list[str]) -> EmailChannel:
    if not e.to:
        raise ConfigError(f"{what}: 'to' needs at least one address")
    for addr in (e.sender, *e.to):
        if "@" not in addr or any(c in addr for c in "\r\n<>,; "):
            raise ConfigError(f"{what}: {addr!r} is not a plain e-mail address")
    if not 0 < e.port < 65536:
        raise ConfigError(f"{what}: bad port {e.port}")
    password = _secret_from(e.password_file, e.password_env, what, warnings)
    if (password is None) != (e.username is None):
        raise ConfigError(f"{what}: give username and password (password_file/password_env) together")
    return EmailChannel(
        host=e.host,
        port=e.port,
        tls=e.tls,
        sender=e.sender,
        to=tuple(e.to),
        username=e.username,
        password=password,
        ca_file=_existing(e.ca_file, what),
        timeout_s=_timeout(e.timeout_s, what),
    )


def load_config(cli: CliOverrides) -> WatchConfig:
    """The configuration from ``cli.config_path`` (if any) with the command-line options applied.

    Raises :class:`ConfigError` (one line) for anything unusable, including no channel at all: a
    watcher that tells nobody would be a silent outcome.
    """
    file = _read_file_config(cli.config_path) if cli.config_path is not None else WatchFile()
    where = str(cli.config_path) if cli.config_path is not None else "command line"
    warnings: list[str] = []
    channels: list[Channel] = []
    for i, w in enumerate(file.notify.webhook):
        what = f"{where}: notify.webhook[{i}]"
        secret = _secret_from(w.secret_file, w.secret_env, what, warnings)
        channels.append(_webhook(w.url, secret, _existing(w.ca_file, what), w.timeout_s, what))
    for i, s in enumerate(file.notify.syslog):
        channels.append(_syslog(s, f"{where}: notify.syslog[{i}]"))
    for i, e in enumerate(file.notify.email):
        channels.append(_email(e, f"{where}: notify.email[{i}]", warnings))
    if cli.webhook_url is not None:
        secret = _secret_from(cli.webhook_secret_file, None, "--webhook", warnings)
        channels.append(
            _webhook(cli.webhook_url, secret, _existing(cli.webhook_ca, "--webhook-ca"), 10.0, "--webhook")
        )
    elif cli.webhook_secret_file is not None or cli.webhook_ca is not None:
        raise ConfigError("--webhook-secret-file and --webhook-ca need --webhook URL")
    if cli.syslog_target is not None:
        ca = str(cli.syslog_ca) if cli.syslog_ca is not None else None
        channels.append(_syslog(SyslogFile(target=cli.syslog_target, ca_file=ca), "--syslog"))
    elif cli.syslog_ca is not None:
        raise ConfigError("--syslog-ca needs --syslog TARGET")
    keys = [c.key for c in channels]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"{where}: channel configured twice: {', '.join(dupes)}")
    if not channels:
        raise ConfigError(
            "no notification channel configured: give --webhook, --syslog or a --config file with notify:"
        )

    uris = tuple(cli.uris) or tuple(file.uris) or (DEFAULT_URI,)
    for uri in uris:
        if "://" not in uri:
            raise ConfigError(f"{uri!r} is not a libvirt URI (e.g. qemu:///system)")
        _split(uri, "uris")
    if len(set(uris)) != len(uris):
        raise ConfigError("a URI is given twice")

    reconnect_max = cli.reconnect_max_s if cli.reconnect_max_s is not None else file.reconnect_max_s
    retry_max = cli.retry_max_s if cli.retry_max_s is not None else file.retry_max_s
    for name, value in (("reconnect_max_s", reconnect_max), ("retry_max_s", retry_max)):
        if not 0.1 <= value <= 3600:
            raise ConfigError(f"{where}: {name} must be between 0.1 and 3600 seconds, not {value}")
    if file.resync_interval_s < 0:
        raise ConfigError(
            f"{where}: resync_interval_s must be >= 0 (0 = never), not {file.resync_interval_s}"
        )
    poll = cli.poll_interval_s if cli.poll_interval_s is not None else file.poll_interval_s
    if poll is not None and poll != 0 and not 0.2 <= poll <= 3600:
        raise ConfigError(
            f"{where}: poll_interval_s must be 0 (off) or between 0.2 and 3600 seconds, not {poll}"
        )
    if file.queue_max < 1:
        raise ConfigError(f"{where}: queue_max must be >= 1, not {file.queue_max}")

    if cli.state_path is not None:
        state = cli.state_path
    elif file.state is not None:
        state = Path(file.state)
    else:
        state = default_state_path()
    profile = cli.profile_path or (Path(file.profile) if file.profile is not None else None)
    return WatchConfig(
        uris=uris,
        state_path=state,
        profile_path=profile,
        channels=tuple(channels),
        reconnect_max_s=reconnect_max,
        resync_interval_s=file.resync_interval_s,
        poll_interval_s=poll,
        retry_max_s=retry_max,
        queue_max=file.queue_max,
        warnings=tuple(warnings),
    )
