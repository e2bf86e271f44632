"""The files generated from the code (`golive docs ...`): asyncapi.py (docs/asyncapi.yaml), compose_envoy.py
(deploy/envoy.yaml). A test fails when a committed file differs from what these generate."""
