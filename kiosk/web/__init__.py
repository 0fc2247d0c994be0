"""The kiosk's loopback web servers: the visitor screen and /healthz.

CONTRACT:
    make_screen_server(kiosk, settings) (screen.py): the large-print page, its events and keys
    Health / make_server (health.py): /healthz for operators
"""
