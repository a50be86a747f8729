"""``hvguard watch``: the VM configuration-change monitor (SS-009 11.3.7), in the foreground.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT); 1 when the watcher failed while running; 2 for a
usage, configuration or state-file error (one line on stderr).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from hvguard.cli.errors import EXIT_OK, UserError
from hvguard.cli.options import vsphere_options
from hvguard.profile import ProfileError, load_profile
from hvguard.services.watch.config import CliOverrides, ConfigError, load_config

if TYPE_CHECKING:
    from hvguard.collect.vsphere.target import VsphereOptions
    from hvguard.services.watch.service import VsphereLogin


def _vsphere_logins(uris: tuple[str, ...], options: VsphereOptions) -> dict[str, VsphereLogin]:
    """Each ``vsphere://`` URI's target and password, read now: a bad target or a missing or exposed
    password file is a usage error (exit 2) before anything starts."""
    from hvguard.collect.vsphere.target import (
        VsphereTargetError,
        is_vsphere_target,
        parse_vsphere_target,
        password_for,
    )
    from hvguard.services.watch.service import VsphereLogin

    out = {}
    for uri in uris:
        if not is_vsphere_target(uri):
            continue
        try:
            target = parse_vsphere_target(uri)
            out[uri] = VsphereLogin(target, options, password_for(target, options))
        except VsphereTargetError as exc:
            raise UserError(str(exc)) from exc
    return out


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s hvguard-watch %(levelname)s %(message)s"))
    logger = logging.getLogger("hvguard.watch")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


@click.command("watch")
@click.argument("uris", nargs=-1)
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="YAML config file."
)
@click.option(
    "--state", "state_path", type=click.Path(path_type=Path, dir_okay=False), help="State file (SQLite)."
)
@click.option(
    "--profile", "profile_path", type=click.Path(path_type=Path, dir_okay=False), help="Profile YAML."
)
@click.option("--webhook", "webhook_url", metavar="URL", help="POST each change to this https:// URL.")
@click.option(
    "--webhook-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the webhook's HMAC key.",
)
@click.option(
    "--webhook-ca", type=click.Path(path_type=Path, dir_okay=False), help="CA bundle for the webhook's TLS."
)
@click.option("--syslog", "syslog_target", metavar="TARGET", help="local | udp://H:P | tcp://H:P | tls://H:P")
@click.option(
    "--syslog-ca", type=click.Path(path_type=Path, dir_okay=False), help="CA bundle for tls:// syslog."
)
@click.option("--reconnect-max", type=float, help="Cap of the reconnect backoff in seconds (default 30).")
@click.option("--retry-max", type=float, help="Cap of the delivery retry backoff in seconds (default 300).")
@click.option(
    "--poll-interval",
    type=float,
    help="Compare every VM this often in seconds (0 = off; default off locally, 5 for remote URIs).",
)
@click.option("--check-config", is_flag=True, help="Validate the configuration and exit.")
@click.option("--quiet", is_flag=True, help="Log warnings and errors only (every change is a warning).")
@vsphere_options
def watch(
    uris: tuple[str, ...],
    config_path: Path | None,
    state_path: Path | None,
    profile_path: Path | None,
    webhook_url: str | None,
    webhook_secret_file: Path | None,
    webhook_ca: Path | None,
    syslog_target: str | None,
    syslog_ca: Path | None,
    reconnect_max: float | None,
    retry_max: float | None,
    poll_interval: float | None,
    check_config: bool,
    quiet: bool,
    vsphere: VsphereOptions,
) -> int:
    """Watch libvirt URIs (default qemu:///system) or vsphere://USER@HOST targets and notify on every VM
    configuration change.

    Each change to a VM's definition (or to a running VM's live configuration) is diffed against the
    last known state, the SS-009 checks are re-run, and every configured channel (webhook, syslog,
    e-mail) is told within a second. Changes made while hvguard or libvirtd was down are reported
    after reconnecting. Runs in the foreground; stop with SIGTERM.
    """
    try:
        config = load_config(
            CliOverrides(
                uris=uris,
                config_path=config_path,
                state_path=state_path,
                profile_path=profile_path,
                webhook_url=webhook_url,
                webhook_secret_file=webhook_secret_file,
                webhook_ca=webhook_ca,
                syslog_target=syslog_target,
                syslog_ca=syslog_ca,
                reconnect_max_s=reconnect_max,
                retry_max_s=retry_max,
                poll_interval_s=poll_interval,
            )
        )
        profile = load_profile(config.profile_path)
    except (ConfigError, ProfileError) as exc:
        raise UserError(str(exc)) from exc
    logins = _vsphere_logins(config.uris, vsphere)
    if check_config:
        channels = ", ".join(c.key for c in config.channels)
        click.echo(f"configuration OK: {', '.join(config.uris)} → {channels}; state {config.state_path}")
        return EXIT_OK
    libvirt: Any = None
    if any(u not in logins for u in config.uris):
        try:
            import libvirt as libvirt_module
        except ImportError as exc:
            raise UserError("libvirt-python is not installed (pip install 'hvguard[libvirt]')") from exc
        libvirt = libvirt_module
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are reported by hvguard itself

    from hvguard.services.watch.service import WatchService
    from hvguard.services.watch.state import StateError, Store

    _setup_logging(quiet)
    try:
        store = Store(config.state_path)
    except StateError as exc:
        raise UserError(str(exc)) from exc
    service = WatchService(config, profile, store, libvirt, logins)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("hvguard.watch").warning("%s received: stopping", signal.Signals(signum).name)
        service.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return service.run()
