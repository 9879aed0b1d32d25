__version__ = "0.1.0"

# The RoadRunner release whose worker protocol we speak (PROTOCOL.md, section 0);
# PHP workers see it as RR_VERSION.
RR_VERSION = "2025.1.15"
