"""Nodes for the many-node benchmarks (bench/nodes.py, bench/sim500.py): each node a real process
(bench/node.py) with its own folder and roles, sharing one database: a throw-away PostgreSQL
server (harness/postgres.py), or the SQLite file of a single node with every role. The bench
reads the shared database itself for the queue depth and the uploads' times, and /proc for
where the CPU went.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from ipcam_analysis.store import Database, DatabaseSettings, open_database

NODE_SCRIPT = common.ROOT / "bench" / "node.py"
STOP_SECONDS = 60.0
DRAIN_SECONDS = 0.1
BUCKET = "ipcam-bench"
DATABASE_URL = "IPCAM_DATABASE_URL"
STORAGE_URL = "IPCAM_STORAGE_URL"


# ---- where the CPU went --------------------------------------------------------------------


def machine_jiffies() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4], fields[7]


def busy_cores(before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, float]:
    """Cores busy (of os.cpu_count()) between two machine_jiffies(), and cores stolen by the
    hypervisor (a shared VM's neighbours)."""
    total = (after[0] - before[0]) or 1
    cores = os.cpu_count() or 1
    return {
        "busy_cores": round((total - (after[1] - before[1])) / total * cores, 2),
        "steal_cores": round((after[2] - before[2]) / total * cores, 2),
    }


def process_table() -> dict[int, tuple[int, float]]:
    """Every process now: pid → (parent pid, CPU seconds so far)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            table[int(entry.name)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    return table


def tree_cpu_seconds(table: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of a process and all its descendants alive in `table`."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0, 0.0))[1]
        stack.extend(children.get(pid, []))
    return total


def bench_cpu_seconds(table: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of this benchmark and every process it started, the ended ones (camera
    processes) included."""
    own = os.times()
    return tree_cpu_seconds(table, os.getpid()) + own.children_user + own.children_system


# ---- the nodes -----------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    address: tuple[str, int] | None = None

    def output(self, last_lines: int = 20) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-last_lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_node(
    name: str, roles: str, settings: dict[str, Any], folder: Path, env: dict[str, str], **fake: Any
) -> Node:
    """bench/node.py with `settings` (its FTP on a free port when it ingests); returns once it
    serves. `fake`: latency (the fake detector's seconds, or None) and no_alerts."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(NODE_SCRIPT), "-c", str(common.write_config(settings, folder))]
    command += ["--role", roles]
    if fake.get("latency") is not None:
        command += ["--fake-latency", str(fake["latency"])]
        command += ["--no-alerts"] if fake.get("no_alerts") else []
    log = folder / "console.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=out)
    node = Node(name, process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"node {name} exited:\n{node.output()}")
        line = next((x for x in node.output().splitlines() if x.startswith("READY")), None)
        if line and len(line.split()) == 3:
            node.address = (line.split()[1], int(line.split()[2]))
        return line is not None

    common.wait_for(ready, common.CHILD_START_SECONDS, f"node {name} to start", poll=0.1)
    return node


@dataclass
class Servers:
    """What every case shares: the SMTP sink, the PostgreSQL server, the S3 bucket."""

    mails: common.MailArrivals
    postgres: Any = None  # harness.postgres.PostgresServer, when the backend is postgresql
    storage_url: str | None = None  # s3://bucket, when --storage s3


@contextmanager
def servers(backend: str, storage: str) -> Iterator[Servers]:
    """The timing SMTP sink, and a throw-away PostgreSQL server and moto's S3 when asked."""
    with ExitStack() as stack:
        shared = Servers(stack.enter_context(common.timing_sink()))
        stack.enter_context(draining(shared.mails))
        if backend == "postgresql":
            from harness.postgres import PostgresServer

            shared.postgres = PostgresServer()
            stack.callback(shared.postgres.remove)
            shared.postgres.start()
        if storage == "s3":
            stack.enter_context(common.moto_rekognition([]))  # also S3; sets AWS_* here
            import boto3

            from harness.aws import REGION

            boto3.client("s3", region_name=REGION).create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            shared.storage_url = f"s3://{BUCKET}"
        yield shared


@contextmanager
def draining(mails: common.MailArrivals) -> Iterator[None]:
    """Count the sink's messages in a thread (read `mails.count`): undrained, the sink blocks
    after 278 (its pipe to this process is full) and with it every worker's e-mail."""
    stop = threading.Event()

    def drain() -> None:
        while not stop.wait(DRAIN_SECONDS):
            mails.drain()

    thread = threading.Thread(target=drain, name="mail-drain", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@dataclass
class Layout:
    """One case's nodes: an ingest node (every role on SQLite) and `worker_nodes` workers."""

    cameras: int
    worker_nodes: int  # 0: one node with every role, on SQLite
    workers: int  # threads per node
    worker_processes: int = 1
    detector: str = "fake"  # or "local"
    latency: float = 0.2  # the fake detector's seconds
    no_alerts: bool = False


@dataclass
class Deployment:
    """Running nodes and the bench's own connection to their database."""

    address: tuple[str, int]
    database: Database
    nodes: list[Node]
    postgres_pid: int | None = None

    def depth(self) -> int:
        rows = self.database.query(
            "SELECT COUNT(*) FROM uploads WHERE state IN ('pending', 'working')"
        )
        return int(rows[0][0])

    def done(self) -> int:
        return int(self.database.query("SELECT COUNT(*) FROM uploads WHERE state = 'done'")[0][0])

    def finished_since(self, since: float) -> list[tuple[float, float]]:
        """(finished_at, ms received → finished) of the uploads finished since `since`."""
        return common.finish_latencies(self.database.query(common.FINISHED_SINCE_SQL, (since,)))

    def transactions(self) -> int | None:
        """Transactions PostgreSQL has counted in this database so far (None on SQLite): per
        upload, the round trips between the nodes and the server."""
        if not self.postgres_pid:
            return None
        rows = self.database.query(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return int(rows[0][0])

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each node (with its worker processes), of PostgreSQL, and of
        everything this benchmark runs ("all": the cameras and the SMTP sink too)."""
        table = process_table()
        found = {node.name: tree_cpu_seconds(table, node.process.pid) for node in self.nodes}
        found["all"] = bench_cpu_seconds(table)
        if self.postgres_pid:
            found["postgresql"] = tree_cpu_seconds(table, self.postgres_pid)
            found["all"] += found["postgresql"]
        return found


def node_settings(layout: Layout, folder: Path, smtp_port: int | None) -> dict[str, Any]:
    """A node's config (common.service_settings): its folder, a free FTP port, e-mail to the
    sink, the fake detector in a cloud detector's place or the local one (1 thread)."""
    local = layout.detector == "local"
    settings = common.service_settings(
        folder,
        cameras=layout.cameras,
        workers=layout.workers,
        worker_processes=layout.worker_processes,
        detector={"type": "local", "threads": 1} if local else {"type": "rekognition"},
        smtp_port=None if layout.no_alerts else smtp_port,
        ftp_port=common.free_port(),
    )
    settings["node_name"] = folder.name
    return settings


@contextmanager
def deployment(shared: Servers, layout: Layout, name: str) -> Iterator[Deployment]:
    """Fresh nodes on a fresh database (and bucket prefix) for one case; stopped at the end."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nodes-")))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(common.ROOT / "src"), str(common.ROOT)]),
        }
        url = None
        if layout.worker_nodes:
            assert shared.postgres is not None, "worker nodes need the postgresql backend"
            url = shared.postgres.create_database()
            stack.callback(shared.postgres.drop_database, url.rsplit("/", 1)[1])
            env[DATABASE_URL] = url
        if shared.storage_url:
            env[STORAGE_URL] = f"{shared.storage_url}/{name}"
        fake = {"latency": None if layout.detector == "local" else layout.latency}
        fake["no_alerts"] = layout.no_alerts
        nodes: list[Node] = []
        stack.callback(lambda: [node.stop() for node in nodes])
        names = ["ingest"] + [f"worker-{n}" for n in range(1, layout.worker_nodes + 1)]
        for node_name in names:
            folder = work / node_name
            settings = node_settings(layout, folder, shared.mails.port)
            if layout.detector == "local":
                common.seed_model_cache(folder)
            roles = node_name.split("-")[0] if layout.worker_nodes else "ingest,worker,web"
            nodes.append(start_node(node_name, roles, settings, folder, env, **fake))
        database = open_database(DatabaseSettings(url=url, pool_size=2), work / "ingest" / "data")
        stack.callback(database.close)
        address = nodes[0].address
        assert address is not None
        postgres_pid = _postmaster_pid(shared.postgres) if url else None
        yield Deployment(address, database, nodes, postgres_pid)


def _postmaster_pid(server: Any) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def cores_used(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Cores used over `seconds` between two Deployment.cpu_seconds(): by each node, PostgreSQL,
    everything the bench runs ("all"), and of that the rest: the cameras, the SMTP sink, moto
    (with --storage s3) and the bench itself."""
    used = {name: round((after[name] - before.get(name, 0.0)) / seconds, 2) for name in after}
    parts = sum(v for name, v in used.items() if name != "all")
    used["cameras, sink, moto"] = round(used["all"] - parts, 2)
    return used
