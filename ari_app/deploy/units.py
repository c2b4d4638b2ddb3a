"""What `ivr112 install` writes, as text: the settings file for a server, three systemd
units (Asterisk in its root, the app, the guard) and logrotate's rule for Asterisk's logs.
Pure: paths in, file contents out, so the dry run, the tests and the install read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

USER = "ivr112"
UNIT_DIR = "/etc/systemd/system"
ASTERISK_UNIT, APP_UNIT, GUARD_UNIT = "ivr112-asterisk.service", "ivr112.service", "ivr112-guard.service"
RESTART_SEC = 1  # a dead part is back within a second or two; systemd's default is 100 ms


@dataclass(frozen=True)
class Paths:
    """Where a server's pieces live (absolute, as the running system sees them)."""

    project: Path  # the checkout whose .venv runs ivr112
    config_dir: Path = Path("/etc/ivr112")
    data_dir: Path = Path("/var/lib/ivr112")

    @property
    def config(self) -> Path:
        return self.config_dir / "ivr112.yaml"

    @property
    def asterisk_root(self) -> Path:
        return self.data_dir / "asterisk-root"

    @property
    def ivr112(self) -> str:
        return f"{self.project}/.venv/bin/ivr112 --config {self.config}"


def settings_file(paths: Paths) -> str:
    """The server's settings: the data and the Asterisk root under /var/lib/ivr112."""
    return (
        "# ivr112 on this server (written by `ivr112 install`; kept by upgrades and by uninstall).\n"
        "# Every setting and its default: `ivr112 --config /etc/ivr112/ivr112.yaml settings`, docs/settings.md.\n"
        f"data_dir: {paths.data_dir}\n"
        f"asterisk_root: {paths.asterisk_root}\n"
        "# To open the console to the operators' PCs over HTTPS: console_host: <this server's LAN address>\n"
    )


_HARDENING = """NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
"""


def asterisk_unit(paths: Paths, instance: str) -> str:
    """Asterisk 22 in its Debian sid root, in the foreground under systemd. Root, because it
    enters its root with chroot; ProtectSystem=full keeps /usr, /boot and /etc read-only."""
    config = f"/srv/ivr112/{instance}/etc/asterisk.conf"
    return f"""[Unit]
Description=ivr112 Asterisk 22 (instance {instance}, in {paths.asterisk_root})
Documentation=file://{paths.project}/docs/operations.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStartPre={paths.ivr112} asterisk configure
ExecStart=/usr/sbin/chroot {paths.asterisk_root} asterisk -f -C {config}
ExecReload=/usr/sbin/chroot {paths.asterisk_root} asterisk -C {config} -rx "core reload"
Restart=always
RestartSec={RESTART_SEC}
TimeoutStopSec=30
LimitNOFILE=65536
ProtectSystem=full
{_HARDENING}
[Install]
WantedBy=multi-user.target
"""


def app_unit(paths: Paths) -> str:
    """The app, as the ivr112 system user, after Asterisk; only the data folder is writable."""
    return f"""[Unit]
Description=ivr112 app (ARI call control, console, AML door)
Documentation=file://{paths.project}/docs/operations.md
After=network-online.target {ASTERISK_UNIT}
Wants=network-online.target {ASTERISK_UNIT}

[Service]
Type=simple
User={USER}
Group={USER}
ExecStart={paths.ivr112} run
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec={RESTART_SEC}
TimeoutStopSec=20
ProtectSystem=strict
ReadWritePaths={paths.data_dir}
{_HARDENING}
[Install]
WantedBy=multi-user.target
"""


def guard_unit(paths: Paths) -> str:
    """The guard: frees callers stuck in Stasis when the app is away. Root, because it asks
    Asterisk's CLI through chroot; systemd, not the guard, restarts a dead Asterisk."""
    return f"""[Unit]
Description=ivr112 guard (sends callers to the operators when the app is away)
Documentation=file://{paths.project}/docs/operations.md
After={ASTERISK_UNIT}
Wants={ASTERISK_UNIT}

[Service]
Type=simple
ExecStart={paths.ivr112} guard
Restart=always
RestartSec={RESTART_SEC}
ProtectSystem=strict
ReadWritePaths={paths.data_dir}
{_HARDENING}
[Install]
WantedBy=multi-user.target
"""


def logrotate_rule(paths: Paths, instance: str) -> str:
    """Asterisk's own logs, weekly, 8 weeks kept; Asterisk reopens them after the rotation.
    (The app and the guard log to the journal.)"""
    log = paths.asterisk_root / f"srv/ivr112/{instance}/log"
    config = f"/srv/ivr112/{instance}/etc/asterisk.conf"
    return f"""{log}/messages.log {log}/console.log {log}/queue_log {{
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
    sharedscripts
    postrotate
        /usr/sbin/chroot {paths.asterisk_root} asterisk -C {config} -rx "logger reload" >/dev/null 2>&1 || true
    endscript
}}
"""


def unit_files(paths: Paths, instance: str) -> dict[str, str]:
    """Each unit's file name and text."""
    return {ASTERISK_UNIT: asterisk_unit(paths, instance), APP_UNIT: app_unit(paths), GUARD_UNIT: guard_unit(paths)}
