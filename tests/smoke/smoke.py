"""Client side of tests/smoke.sh: talks to a running `warden serve` with Python grpcio.

Everything about warden.v1 is discovered through server reflection (no .proto files, no
generated code): descriptors come from ProtoReflectionDescriptorDatabase into a
DescriptorPool, request/response classes from message_factory.GetMessageClass.

Subcommands:
  ports N                      print N free loopback TCP ports, one per line
  wait-ready URL PID SECONDS   poll URL until HTTP 200 (fails early if PID exits)
  check --tcp H:P --uds PATH   run the gRPC checks, one `ok ...` / `FAIL ...` line each
"""

import argparse
import os
import socket
import sys
import time
import urllib.error
import urllib.request

RPC_TIMEOUT = 5.0
# Generous (a debug build answers in well under 1 ms); stalls of ~40 ms per call are a bug.
LATENCY_BUDGET_MS = 15

AUTHORIZER = "warden.v1.Authorizer"
HEALTH = "grpc.health.v1.Health"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"

# Verified against the default bundle (policies/).
PRINCIPAL_TEAM1 = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1"
ACTION = "sagemaker:CreatePartnerAppPresignedUrl"
RESOURCE_OWN = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001"
RESOURCE_OTHER = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-FIDDLERTM002"
CONTEXT = {"aws:SourceIp": "10.100.10.7"}
DENY_POLICY = "role/SageMakerStudioExecutionRoleTeam1/inline/TeamIsolation"
DENY_SID = "DenyOtherTeamsPartnerApps"


def cmd_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return 0


def cmd_wait_ready(url, pid, seconds):
    deadline = time.monotonic() + seconds
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"FAIL readiness: warden (pid {pid}) exited before {url} answered 200")
            return 1
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    print(f"ok   readiness: {url} -> 200")
                    return 0
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        time.sleep(0.2)
    print(f"FAIL readiness: {url} not 200 within {seconds}s (last: {last})")
    return 1


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name, detail=""):
        self.passed += 1
        print(f"ok   {name}" + (f": {detail}" if detail else ""), flush=True)

    def fail(self, name, detail):
        self.failed += 1
        print(f"FAIL {name}: {detail}", flush=True)

    def run(self, name, fn):
        """Runs fn(); it returns a detail string (ok) or raises AssertionError/other (FAIL)."""
        try:
            detail = fn()
        except AssertionError as e:
            self.fail(name, str(e) or "assertion failed")
            return False
        except Exception as e:  # noqa: BLE001 - any error is a failed check
            self.fail(name, f"{type(e).__name__}: {describe_error(e)}")
            return False
        self.ok(name, detail or "")
        return True


def describe_error(e):
    import grpc

    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        return f"{e.code().name}: {e.details()!r}"
    return str(e)


def reflection_db(channel, service):
    """A ProtoReflectionDescriptorDatabase speaking reflection `service` (v1 or v1alpha).

    grpcio-reflection only ships v1alpha messages; v1 is wire-identical, so the v1alpha
    message classes are reused with the v1 method path."""
    from grpc_reflection.v1alpha import reflection_pb2
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel)

    class Stub:
        def __init__(self):
            self.ServerReflectionInfo = channel.stream_stream(
                f"/{service}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )

    db._stub = Stub()
    return db


class Dynamic:
    """Descriptors and message classes for the server's services, from reflection."""

    def __init__(self, channel, db):
        from google.protobuf import descriptor_pool

        self.channel = channel
        self.pool = descriptor_pool.DescriptorPool(db)

    def message_class(self, full_name):
        from google.protobuf import message_factory

        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def method(self, channel, service, method):
        svc = self.pool.FindServiceByName(service)
        m = svc.methods_by_name[method]
        req = self.message_class(m.input_type.full_name)
        resp = self.message_class(m.output_type.full_name)
        call = channel.unary_unary(
            f"/{svc.full_name}/{m.name}",
            request_serializer=req.SerializeToString,
            response_deserializer=resp.FromString,
        )
        return req, call

    def build(self, cls, value):
        from google.protobuf import json_format

        msg = cls()
        json_format.ParseDict(value, msg, descriptor_pool=self.pool)
        return msg


def authorize_request(resource, principal=PRINCIPAL_TEAM1):
    return {
        "principal": {"arn": principal},
        "action": ACTION,
        "resource": resource,
        "context": dict(CONTEXT),
    }


def enum_name(msg, field):
    fd = msg.DESCRIPTOR.fields_by_name[field]
    value = getattr(msg, field)
    v = fd.enum_type.values_by_number.get(value)
    return v.name if v else str(value)


def determining(resp):
    return [(s.policy, s.sid, s.effect, s.file) for s in resp.determining]


def cmd_check(tcp, uds):
    import grpc

    c = Checks()
    tcp_channel = grpc.insecure_channel(tcp)
    uds_channel = grpc.insecure_channel(f"unix:{uds}") if uds else None
    state = {}

    def connect():
        grpc.channel_ready_future(tcp_channel).result(timeout=RPC_TIMEOUT)
        return f"TCP channel to {tcp} ready"

    if not c.run("connect", connect):
        return c

    def list_services():
        last = None
        for svc in (REFLECTION_V1, REFLECTION_V1ALPHA):
            try:
                db = reflection_db(tcp_channel, svc)
                services = list(db.get_services())
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    last = e
                    continue
                raise
            state["db"] = db
            state["reflection"] = svc
            break
        else:
            raise AssertionError(f"neither reflection v1 nor v1alpha answered: {describe_error(last)}")
        missing = [s for s in (AUTHORIZER, HEALTH) if s not in services]
        assert not missing, f"missing {missing} in {services}"
        assert REFLECTION_V1 in services or REFLECTION_V1ALPHA in services, f"no reflection service in {services}"
        return f"via {state['reflection']}: {', '.join(sorted(services))}"

    if not c.run("reflection list services", list_services):
        return c
    dyn = Dynamic(tcp_channel, state["db"])

    def describe_authorizer():
        svc = dyn.pool.FindServiceByName(AUTHORIZER)
        methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in svc.methods}
        want = ("warden.v1.AuthorizeRequest", "warden.v1.AuthorizeResponse")
        assert methods.get("Authorize") == want, f"Authorize is {methods.get('Authorize')}, want {want}"
        return "methods " + ", ".join(f"{k}({v[0]}) -> {v[1]}" for k, v in sorted(methods.items()))

    def describe_request():
        d = dyn.pool.FindMessageTypeByName("warden.v1.AuthorizeRequest")
        fields = {f.name: f for f in d.fields}
        for name in ("principal", "action", "resource", "context", "resource_tags", "explain"):
            assert name in fields, f"no field {name!r} in {sorted(fields)}"
        assert fields["context"].message_type.full_name == "google.protobuf.Struct", "context is not a Struct"
        assert fields["principal"].message_type.full_name == "warden.v1.Principal", "principal is not a Principal"
        return "fields " + ", ".join(f"{f.name}={f.number}" for f in d.fields)

    c.run(f"reflection describe {AUTHORIZER}", describe_authorizer)
    c.run("reflection describe warden.v1.AuthorizeRequest", describe_request)

    def health(service):
        def check():
            try:
                req_cls, call = dyn.method(tcp_channel, HEALTH, "Check")
                how = "reflection"
            except KeyError:
                # The health proto is not in reflection: fall back to the packaged stubs.
                from grpc_health.v1 import health_pb2

                req_cls = health_pb2.HealthCheckRequest
                call = tcp_channel.unary_unary(
                    f"/{HEALTH}/Check",
                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                    response_deserializer=health_pb2.HealthCheckResponse.FromString,
                )
                how = "grpcio-health-checking stubs (health not described by reflection)"
            resp = call(req_cls(service=service), timeout=RPC_TIMEOUT)
            status = enum_name(resp, "status")
            assert status == "SERVING", f"status {status}"
            return f"{status} ({how})"

        return check

    c.run('health Check ""', health(""))
    c.run(f'health Check "{AUTHORIZER}"', health(AUTHORIZER))

    def authorize(channel, resource, want_decision, want_statement=None, repeat=1):
        def check():
            req_cls, call = dyn.method(channel, AUTHORIZER, "Authorize")
            req = dyn.build(req_cls, authorize_request(resource))
            # Repeated calls on one connection make the client reuse its HPACK dynamic table.
            for _ in range(repeat - 1):
                call(req, timeout=RPC_TIMEOUT)
            resp = call(req, timeout=RPC_TIMEOUT)
            decision = enum_name(resp, "decision")
            det = determining(resp)
            assert decision == want_decision, f"decision {decision}, want {want_decision}; determining {det}"
            if want_statement:
                pol, sid = want_statement
                assert any(p == pol and s == sid for p, s, _, _ in det), (
                    f"determining {det} lacks {pol} / {sid}"
                )
            else:
                assert det, "no determining statement"
            assert resp.bundle_revision, "empty bundle_revision"
            by = "; ".join(f"{p} sid={sid} {eff}" for p, sid, eff, _ in det)
            times = f" x{repeat}" if repeat > 1 else ""
            return f"{decision}{times} by [{by}] (revision {resp.bundle_revision[:19]}...)"

        return check

    c.run("Authorize ALLOW (TCP)", authorize(tcp_channel, RESOURCE_OWN, "ALLOW"))
    c.run(
        "Authorize EXPLICIT_DENY (TCP)",
        authorize(tcp_channel, RESOURCE_OTHER, "EXPLICIT_DENY", (DENY_POLICY, DENY_SID)),
    )
    if uds_channel is not None:
        c.run(f"Authorize ALLOW (Unix socket unix:{uds})", authorize(uds_channel, RESOURCE_OWN, "ALLOW", repeat=20))

    def tcp_latency():
        # 40 ms per call is the signature of Nagle + delayed ACK (TCP_NODELAY not set on accepted
        # sockets; tonic's serve_with_incoming ignores Server::tcp_nodelay).
        req_cls, call = dyn.method(tcp_channel, AUTHORIZER, "Authorize")
        req = dyn.build(req_cls, authorize_request(RESOURCE_OWN))
        n = 50
        start = time.perf_counter()
        for _ in range(n):
            call(req, timeout=RPC_TIMEOUT)
        mean_ms = (time.perf_counter() - start) / n * 1000
        assert mean_ms < LATENCY_BUDGET_MS, (
            f"mean {mean_ms:.1f} ms over {n} sequential calls (budget {LATENCY_BUDGET_MS} ms): "
            "TCP_NODELAY not set on accepted connections?"
        )
        return f"mean {mean_ms:.2f} ms over {n} sequential calls (budget {LATENCY_BUDGET_MS} ms)"

    c.run("Authorize latency (TCP)", tcp_latency)

    def invalid_principal():
        req_cls, call = dyn.method(tcp_channel, AUTHORIZER, "Authorize")
        req = dyn.build(req_cls, authorize_request(RESOURCE_OWN, principal=""))
        try:
            resp = call(req, timeout=RPC_TIMEOUT)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"got {describe_error(e)}"
            assert "principal" in (e.details() or ""), f"message does not name principal: {e.details()!r}"
            return f"INVALID_ARGUMENT: {e.details()!r}"
        raise AssertionError(f"succeeded: decision {enum_name(resp, 'decision')}")

    c.run("Authorize empty principal -> INVALID_ARGUMENT", invalid_principal)

    tcp_channel.close()
    if uds_channel is not None:
        uds_channel.close()
    return c


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("wait-ready")
    p.add_argument("url")
    p.add_argument("pid", type=int)
    p.add_argument("seconds", type=float)
    p = sub.add_parser("check")
    p.add_argument("--tcp", required=True)
    p.add_argument("--uds")
    a = ap.parse_args()
    if a.cmd == "ports":
        return cmd_ports(a.n)
    if a.cmd == "wait-ready":
        return cmd_wait_ready(a.url, a.pid, a.seconds)
    c = cmd_check(a.tcp, a.uds)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
