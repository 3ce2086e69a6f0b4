"""Checks gRPC health with the reference Python client (grpcio-health-checking).

usage: check_grpc_health.py HOST:PORT SERVICE  -> prints "<overall> <service>" statuses, e.g. "SERVING SERVING".
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

addr, service = sys.argv[1], sys.argv[2]
with grpc.insecure_channel(addr) as ch:
    stub = health_pb2_grpc.HealthStub(ch)
    out = []
    for name in ("", service):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        out.append(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
    print(" ".join(out))
