"""Team mode on one machine: PostgreSQL (MLflow's backend store and Optuna's study storage) and an MLflow server
on loopback. `make team-up` / `make team-down` run `python -m reasongen.team up|down`; the slow tests use the same
functions. Needs PostgreSQL's server (Debian: `postgresql`; started here, as root or as postgres) and the driver
(`pip install -e .[team]`); clients reach the databases over the Unix socket, without a password."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SOCKET_DIR = "/var/run/postgresql"
STATE_DIR = Path(".team")  # state.json, server.log, artifacts/ (relative to the working directory)
USES = ("mlflow", "optuna")  # one database each: <prefix>_mlflow, <prefix>_optuna


def cluster() -> list[str] | None:
    """[version, name] of the first PostgreSQL cluster, or None where PostgreSQL is not installed."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None or shutil.which("psql") is None:
        return None
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split()
    return listed[:2] if len(listed) >= 2 else None


def start_postgres() -> bool:
    """Start the cluster unless it runs, and give the current user a superuser role; True if this call started it."""
    found = cluster()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed (no pg_lsclusters / pg_ctlcluster / psql on PATH)")
    running = subprocess.run(["pg_ctlcluster", *found, "status"], capture_output=True).returncode == 0
    if not running:
        subprocess.run(["pg_ctlcluster", *found, "start"], check=True)
    if subprocess.run(psql_command("select 1"), capture_output=True).returncode != 0:
        # a fresh cluster knows only `postgres`: create our role as that user (ignore 'already exists')
        create = shlex.join(["psql", "-c", f'create role "{getpass.getuser()}" superuser login'])
        subprocess.run(["su", "postgres", "-c", create], capture_output=True, cwd="/")
    return not running


def stop_postgres() -> None:
    found = cluster()
    if found is not None:
        subprocess.run(["pg_ctlcluster", *found, "stop"], check=True)


def psql_command(sql: str, database: str = "postgres") -> list[str]:
    return ["psql", "-h", SOCKET_DIR, "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql]


def psql(sql: str, database: str = "postgres") -> str:
    result = subprocess.run(psql_command(sql, database), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def create_database(name: str) -> None:
    if not psql(f"select 1 from pg_database where datname = '{name}'"):
        psql(f'create database "{name}"')


def drop_database(name: str) -> None:
    psql(f'drop database if exists "{name}" with (force)')


def database_url(name: str) -> str:
    """SQLAlchemy URL of a database over the local socket (MLflow's --backend-store-uri, Optuna's storage)."""
    return f"postgresql+psycopg2://{getpass.getuser()}@/{name}?host={SOCKET_DIR}"


def start_mlflow(backend_uri: str, artifacts: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port (its own process group, so that it outlives this process), proxying
    artifacts to a local folder; returns once /health answers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", backend_uri,
               "--artifacts-destination", str(artifacts.resolve()), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    with open(log, "ab") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            stop_process_group(server.pid)
            raise RuntimeError(f"mlflow server did not answer on port {port} within 300 s:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def stop_process_group(pid: int) -> None:
    """SIGTERM to the server's process group (the server and its workers), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            except ChildProcessError:
                pass
            time.sleep(0.5)


def up(port: int, workers: int, prefix: str) -> dict:
    """Start PostgreSQL (unless it runs), create the databases, start the MLflow server; write .team/state.json."""
    state_file = STATE_DIR / "state.json"
    if state_file.exists():
        raise RuntimeError(f"{state_file} exists: the team services run already (make team-down first)")
    started = start_postgres()
    databases = {use: f"{prefix}_{use}" for use in USES}
    try:
        for name in databases.values():
            create_database(name)
        server = start_mlflow(database_url(databases["mlflow"]), STATE_DIR / "artifacts", port,
                              STATE_DIR / "server.log", workers)
    except Exception:
        if started:
            stop_postgres()
        raise
    state = {"pid": server.pid, "port": port, "started_postgres": started, "databases": databases,
             "tracking_uri": f"http://127.0.0.1:{port}", "optuna_storage": database_url(databases["optuna"])}
    state_file.write_text(json.dumps(state, indent=2))
    return state


def down(drop: bool = False) -> None:
    """Stop the server of `up`, drop its databases if asked, stop PostgreSQL if `up` started it."""
    state_file = STATE_DIR / "state.json"
    if not state_file.exists():
        print(f"no {state_file}: nothing to stop")
        return
    state = json.loads(state_file.read_text())
    stop_process_group(state["pid"])
    if drop:
        for name in state["databases"].values():
            drop_database(name)
    if state["started_postgres"]:
        stop_postgres()
    state_file.unlink()
    print(f"stopped the MLflow server (pid {state['pid']})" + (", dropped its databases" if drop else "")
          + (" and PostgreSQL" if state["started_postgres"] else "; PostgreSQL was running before: left running"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reasongen.team", description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=5000, help="the MLflow server's port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=2, help="the MLflow server's worker processes")
    parser.add_argument("--prefix", default="reasongen", help="databases <prefix>_mlflow and <prefix>_optuna")
    parser.add_argument("--drop", action="store_true", help="down: drop the databases too (runs, models, studies)")
    args = parser.parse_args(argv)
    if args.action == "down":
        down(args.drop)
        return 0
    state = up(args.port, args.workers, args.prefix)
    print(f"MLflow server on {state['tracking_uri']} (PostgreSQL database {state['databases']['mlflow']}, artifacts in "
          f"{STATE_DIR / 'artifacts'}); to use it and the shared Optuna storage:\n"
          f"  export MLFLOW_TRACKING_URI={state['tracking_uri']}\n"
          f"  reasongen sweep \"hparams_search.storage='{state['optuna_storage']}'\" hparams_search.worker=1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
