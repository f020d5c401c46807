"""Supervisor for the fixture app, shaped like `genesis serve`: /metrics on its own port in the
main process, the app in Hypercorn workers.

python obs_fixture_server.py --port P --metrics-port M --workers N --metrics-dir DIR
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hypercorn.config import Config
from hypercorn.run import run

from genesis.observability import prepare_multiprocess_dir, start_metrics_server


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--metrics-dir", type=Path, required=True)
    args = parser.parse_args()

    # Before any worker starts: workers pick the multi-process mode up from the environment.
    prepare_multiprocess_dir(args.metrics_dir)
    os.environ["OBS_FIXTURE_SERVE"] = "1"
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    )
    server = start_metrics_server("127.0.0.1", args.metrics_port)
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.workers = args.workers
    config.application_path = "obs_fixture_app:app"
    config.accesslog = None
    try:
        return run(config)
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
