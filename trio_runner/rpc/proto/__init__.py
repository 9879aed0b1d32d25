"""Generated protobuf modules for the RPC services' messages.

``applogger_pb2`` (``applogger.v1``) and ``status_pb2`` (``status.v1``) are
generated from the .proto files here; run ``generate.py`` after editing one.
"""
