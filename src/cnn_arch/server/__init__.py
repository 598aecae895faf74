"""`cnn-arch server`: a Language Server Protocol server for `.arch` specs (pygls over stdio).

Imported only by that command: lsprotocol alone takes about 0.7 s to import.
"""
