"""RoadRunner's ``http.v1`` messages.

``http_pb2`` is generated from ``http.proto``; run ``generate.py`` after
editing the .proto. ``wire`` writes ``http.v1.Request`` by hand, for speed.
"""
