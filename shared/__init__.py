"""golive contracts: messages, subjects, streams, bus helpers and settings shared by every service."""
