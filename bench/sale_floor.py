"""The primary's floor for a sale: the least SQL a durable sale must run, beside one INSERT.

    uv run python bench/sale_floor.py [--seconds 5] [--rounds 3] [--clients 16] [--api-ms 0.26]
                                       [--client-ms 0.06] [--quick]

bench/commands.py compares full sales over HTTP with a minimal endpoint that does one
INSERT. This asks how much of that gap no Python can close. Starts a durable embedded
topology (the replica subscribed, so the primary's walsender decodes every commit, as in
production) and runs pgbench, with no Python in the loop, interleaving two scripts:

  minimal  the minimal endpoint's statement: one INSERT of the sale's JSON body;
  sale     the least a sale can write and keep the product's guarantees: in one
           transaction, the stock stream's row updated (version and folded state), the
           sale's own stream created (returns are bounded by it, a second sale with its id
           is refused), their two events inserted with those versions, and the
           idempotency record with the response.
           No key lock, no idempotency lookup, no store lock, no savepoints: each of those
           is something our service adds to this floor.

Printed per script: transactions per second and the CPU per transaction of the primary
(postmaster and all its children, walsender included) and of the replica (applying what
is replicated: the sale's rows, not the minimal insert's). Then the bound it sets: even if
a sale's API cost no more CPU than the minimal endpoint's (`--api-ms`, bench/commands.py's
"server" column) and the load generator's share were the same for both (`--client-ms`,
part of its "replica+client" column), sales over HTTP could reach at most
(api + client + minimal's servers) / (api + client + sale's servers) of the minimal
endpoint's throughput on a CPU-bound machine. `--quick`: one round of 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

from append import run_pgbench  # bench/ is on sys.path as a script's folder
from inventory.runtime.embedded import EmbeddedTopology

SKUS = 1000
BODY = '{"sale_id":"s-:id","lines":[{"sku":"SKU:sku","quantity":1}]}'

SETUP = """
CREATE TABLE IF NOT EXISTS bench_inserts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body jsonb NOT NULL);
INSERT INTO streams (stream, version, state)
SELECT 'stock-floor-SKU' || i, 1, '{"on_hand": "1000000000", "reserved": "0"}'
FROM generate_series(0, %s - 1) AS i ON CONFLICT DO NOTHING;
"""

MINIMAL = """\
\\set sku random(0, {skus} - 1)
\\set id random(1, 1000000000000)
INSERT INTO bench_inserts (body) VALUES (('{body}')::jsonb);
"""

SALE = """\
\\set sku random(0, {skus} - 1)
\\set id random(1, 1000000000000)
BEGIN;
WITH item AS (
    UPDATE streams
    SET version = version + 1, updated_at = now(),
        state = '{{"on_hand": "999999999", "reserved": "0", "sold": "1"}}'
    WHERE stream = 'stock-floor-SKU' || :sku
    RETURNING stream, version
), sale AS (
    INSERT INTO streams (stream, version, state)
    VALUES ('sale-floor-s-' || :id, 1, ('{{"lines": [["SKU' || :sku || '", "1"]]}}')::jsonb)
    RETURNING stream, version
)
INSERT INTO events (id, stream, version, type, store, sku, data, metadata, occurred_at)
SELECT gen_random_uuid(), x.stream, x.version, x.type, 'floor', x.sku,
       ('{{"sale_id": "s-' || :id || '", "sku": "SKU' || :sku || '", "quantity": "1"}}')::jsonb,
       ('{{"actor": {{"id": "bench", "kind": "api_key", "name": "bench", "role": "admin"}},
         "command_id": "' || gen_random_uuid() || '",
         "idempotency_key": "s-' || :id || '"}}')::jsonb,
       now()
FROM (SELECT stream, version, 'stock.sold' AS type, 'SKU' || :sku AS sku FROM item
      UNION ALL SELECT stream, version, 'sale.recorded', NULL FROM sale) AS x;
INSERT INTO idempotency (principal, key, fingerprint, status, response)
VALUES ('bench', 's-' || :id, '\\x00', 201, convert_to('{body}', 'UTF8'));
END;
"""


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of a postmaster and all its children, the exited ones included
    (the postmaster reaps its backends, so theirs add to its children's times)."""
    root = psutil.Process(pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for process in root.children(recursive=True):
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue  # exited between the listing and the reading: counted by its parent
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--api-ms", type=float, default=0.26, help="the minimal endpoint's API CPU per request"
    )
    parser.add_argument(
        "--client-ms", type=float, default=0.06, help="the load generator's CPU per request"
    )
    parser.add_argument("--quick", action="store_true", help="one round of 2 s")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2, 1

    root = Path(tempfile.mkdtemp(prefix="inventory-bench-floor-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    try:
        env = topology.start()
        admin_url = env["INVENTORY_PRIMARY_ADMIN_URL"]
        assert topology.primary is not None and topology.primary.process is not None
        assert topology.replica is not None and topology.replica.process is not None
        servers = topology.primary.process.pid, topology.replica.process.pid
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(SETUP.replace("%s", str(SKUS)))
        body = BODY.replace(":id", "' || :id || '").replace(":sku", "' || :sku || '")
        scripts = {
            "minimal": MINIMAL.format(skus=SKUS, body=body),
            "sale": SALE.format(skus=SKUS, body=body),
        }
        paths = {}
        for name, text in scripts.items():
            paths[name] = root / f"{name}.sql"
            paths[name].write_text(text)
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in scripts}
        for _ in range(args.rounds):
            for name, path in paths.items():
                before = [tree_cpu(pid) for pid in servers]
                tps, done = run_pgbench(admin_url, path, args.clients, args.seconds)
                time.sleep(1.0)  # the replica catches up; the postmaster reaps backends
                used = [tree_cpu(pid) - cpu for pid, cpu in zip(servers, before, strict=True)]
                primary, replica = (cpu / max(1, done) * 1000 for cpu in used)
                figures[name].append((tps, primary, replica))
        print(f"pgbench, {args.clients} clients, {args.rounds} rounds of {args.seconds} s")
        cpu = {}
        for name, runs in figures.items():
            tps = statistics.median(run[0] for run in runs)
            primary = statistics.median(run[1] for run in runs)
            replica = statistics.median(run[2] for run in runs)
            cpu[name] = primary + replica
            rounds = [round(run[0]) for run in runs]
            print(
                f"  {name:8} {tps:7.0f} tps  CPU ms/transaction: primary {primary:.3f}"
                f" replica {replica:.3f}  (rounds: {rounds})"
            )
        shared = args.api_ms + args.client_ms
        bound = (shared + cpu["minimal"]) / (shared + cpu["sale"])
        print(
            f"bound: with a sale's API as cheap as the minimal endpoint's ({args.api_ms} ms)"
            f" and {args.client_ms} ms of load generator each, sales reach at most"
            f" {bound:.0%} of the minimal endpoint's throughput"
        )
        _bench_results(bound, cpu["sale"] - cpu["minimal"])
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


def _bench_results(bound: float, extra_ms: float) -> None:
    """The headline figures for bench/run.py: the bound, and the servers' extra CPU."""
    for metric, value in (
        ("sale floor / minimal (bound on sales over HTTP)", round(bound, 2)),
        ("servers' CPU ms a sale's SQL adds to the minimal insert", round(extra_ms, 3)),
    ):
        figure = {"bench": "sale_floor", "metric": metric, "value": value, "goal": "a floor"}
        print("BENCH-RESULT " + json.dumps({**figure, "met": None}))


if __name__ == "__main__":
    main()
