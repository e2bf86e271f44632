"""The five golive services. Each imports shared/ only; services meet on the bus, never in code."""
