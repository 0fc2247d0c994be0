"""The staff content desk: city staff load, check, publish and roll back content in a
browser, through the same import path as `kiosk content import`.

    accounts (who may sign in) · uploads (what a browser sends) · pages (HTML)
    · desk (routes, the desk's state and actions)

CONTRACT:
    StaffPasswords(state_dir) (accounts.py); StaffDesk(settings), make_server(settings),
    serve(settings), serve_in_background(settings) (desk.py)
"""
