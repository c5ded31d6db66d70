"""The orders service: places, reads and cancels orders, calling users and catalog."""
