"""Self-service environments: namespaces on Kubernetes with quota, limits, network policy and a
time to live; requests, approvals, extensions, destruction, and the reaper."""
