"""The bare baseline under Flask's development server, the server the seeds warn against.

``python bench/bare_devserver.py --port 8123`` with ``BASELINE_CONNINFO`` set: the same app as
under Gunicorn (``bare_app``), served by ``app.run(threaded=True)``: one process, a thread per
connection, no reloader, no debugger. Flask documents this server as unfit for production.
"""

from __future__ import annotations

import argparse

from bare_app import app


def main() -> None:
    """Serve ``bare_app`` on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    port: int = parser.parse_args().port
    app.run(host="127.0.0.1", port=port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
