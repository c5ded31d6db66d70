"""Serve the users app with Flask's built-in development server, for comparison only.

``python bench/devserver.py --port 8123`` with ``DATABASE_URL`` in the environment. The
settings come from the environment exactly as under Gunicorn; only the server differs: one
process, one thread per connection (``threaded=True``), no reloader, no debugger. Flask
documents this server as unfit for production; the benchmark shows by how much.
"""

from __future__ import annotations

import argparse

from users import create_app


def main() -> None:
    """Build the app from the environment and serve it on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    port: int = parser.parse_args().port
    app = create_app()
    app.run(host="127.0.0.1", port=port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
