"""The staff content desk: city staff load, check, publish and roll back content in a
browser, through the same import path as `kiosk content import`.

CONTRACT:
    StaffPasswords(state_dir), StaffDesk(settings), make_server(settings), serve(settings)
"""
