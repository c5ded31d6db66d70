"""The serving layer: the web servers a service runs under.

granian (``flotilla serve``) and Gunicorn with its config and JSON access log, the memory
work around their fork, and the helpers that start, watch and stop server processes.
"""
