"""``flotilla new``: a new service's files, rendered from templates that ship with the chassis."""
