"""Split inference through a real cloud process: outputs against the whole model run locally, no request lost
when the cloud dies, the shaped link's delay against RTT + 8 * bytes / rate, bad input.

Every server is stopped by the ``serve`` fixture's finalizer, also when a test fails."""

import os
import signal
import socket
import threading
import time

import pytest
import torch
from torch import nn

from collab_lib.hardware.specs import LinkSpec
from collab_lib.models import split_model, vision_cnn
from collab_lib.seed import generator, set_seed
from collab_lib.system.serve import CloudServer, DeviceClient, ShapedLink, encode_tensor, frame, read_frame

FAST = ShapedLink(LinkSpec("fast", uplink_bits_per_s=1e10, downlink_bits_per_s=1e10, rtt_s=0.0))
SLACK_S = 0.050  # upper tolerance on emulated delays: generous, for a busy 2-core CI machine


class Sleep(nn.Module):
    """A layer that holds the cloud up (module-level, so the server process can unpickle it)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x


def _explode():
    raise RuntimeError("cannot load this layer here")


class Unloadable(nn.Module):
    """Pickles in the parent, fails to unpickle in the server process."""

    def __reduce__(self):
        return _explode, ()


@pytest.fixture
def model() -> nn.Sequential:
    set_seed(0, dtype=torch.float32)  # one torch thread, as in the server: bitwise-equal outputs; float32,
    # what a deployment sends
    return vision_cnn(width=8, stem_channels=8, cut_channels=4).eval()  # 24 layers; (B, 3, 32, 32) frames


def frames(n: int) -> list[torch.Tensor]:
    """``n`` different batches of two different frames, so a reply to the wrong request would show."""
    return [torch.randn(2, 3, 32, 32, generator=generator(0, offset=i)) for i in range(n)]


@pytest.fixture
def serve(request):
    """``serve(cloud_part)`` starts a server; a finalizer stops every server the test started."""
    servers = []

    def stop_all():
        for server in servers:
            server.stop()

    request.addfinalizer(stop_all)

    def start(cloud_part: nn.Module) -> CloudServer:
        server = CloudServer(cloud_part, start_timeout_s=30.0)
        servers.append(server)
        return server.start()

    return start


def wait_dead(server: CloudServer, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while server.is_alive():
        assert time.monotonic() < deadline, "server process did not die"
        time.sleep(0.01)


@torch.no_grad()
@pytest.mark.parametrize("split", [0, 1, 7, 23])  # cloud only, after the first conv, the narrow point, last
def test_split_inference_equals_the_local_model(serve, model, split):
    device_part, cloud_part = split_model(model, split)
    server = serve(cloud_part)
    with DeviceClient(device_part, cloud_part, server.address, FAST, timeout_s=5.0) as client:
        for x in frames(3):
            result = client.infer(x)
            assert not result.fallback and result.reason is None
            assert torch.equal(result.output, model(x))
            assert result.bytes_up == len(frame(encode_tensor(device_part(x))))


@torch.no_grad()
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("how", ["stop", "sigkill"])  # a clean shutdown and a crash
def test_killing_the_cloud_mid_run_loses_no_request(serve, model, how):
    n, k = 8, 3
    device_part, cloud_part = split_model(model, 7)
    server = serve(cloud_part)
    inputs, results = frames(n), []
    with DeviceClient(device_part, cloud_part, server.address, FAST, timeout_s=2.0) as client:
        for i, x in enumerate(inputs):
            if i == k:
                server.stop() if how == "stop" else os.kill(server.pid, signal.SIGKILL)
                wait_dead(server)
            results.append(client.infer(x))
    assert len(results) == n
    assert [r.fallback for r in results] == [False] * k + [True] * (n - k)
    assert all(r.reason is None for r in results[:k]) and all(r.reason for r in results[k:])
    for x, result in zip(inputs, results):
        assert torch.equal(result.output, model(x))


@torch.no_grad()
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_cloud_killed_during_a_request_is_replaced_by_the_device(serve, model):
    device_part, cloud_part = split_model(model, 7)
    server = serve(nn.Sequential(Sleep(0.5), *cloud_part))  # the kill lands while the cloud computes
    x = frames(1)[0]
    with DeviceClient(device_part, cloud_part, server.address, FAST, timeout_s=5.0) as client:
        killer = threading.Timer(0.2, os.kill, (server.pid, signal.SIGKILL))
        killer.start()
        try:
            result = client.infer(x)
        finally:
            killer.join()  # fires while the server is still our unreaped child: its pid cannot be reused
    assert result.fallback and result.reason and not result.reason.startswith("TimeoutError")
    assert torch.equal(result.output, model(x))


@torch.no_grad()
def test_a_hung_cloud_times_out_and_the_device_answers(serve, model):
    device_part, cloud_part = split_model(model, 7)
    server = serve(nn.Sequential(Sleep(3.0), *cloud_part))
    x = frames(1)[0]
    with DeviceClient(device_part, cloud_part, server.address, FAST, timeout_s=0.2) as client:
        result = client.infer(x)
    assert result.fallback and result.reason.startswith("TimeoutError")
    assert 0.2 <= result.latency_s < 2.0
    assert torch.equal(result.output, model(x))


@torch.no_grad()
def test_no_server_listening_falls_back_at_once(model):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
    device_part, cloud_part = split_model(model, 7)
    x = frames(1)[0]
    with DeviceClient(device_part, cloud_part, address, FAST, timeout_s=2.0) as client:
        result = client.infer(x)
    assert result.fallback and "Refused" in result.reason and result.bytes_up == 0
    assert torch.equal(result.output, model(x))


# --- The shaped link -----------------------------------------------------------------------------------

LINK = LinkSpec("test", uplink_bits_per_s=2e6, downlink_bits_per_s=4e6, rtt_s=0.040)  # up != down: a swap shows


def test_shaped_send_and_receive_take_half_the_rtt_plus_bytes_over_rate():
    shaped, payload = ShapedLink(LINK), bytes(range(256)) * 80  # 20,480 B: fits the socket buffers
    wire = len(frame(payload))
    up_s = LINK.rtt_s / 2 + 8 * wire / LINK.uplink_bits_per_s  # 0.02 + 0.0819 s
    down_s = LINK.rtt_s / 2 + 8 * wire / LINK.downlink_bits_per_s  # 0.02 + 0.0410 s
    assert shaped.uplink_delay_s(wire) == pytest.approx(up_s)
    assert shaped.downlink_delay_s(wire) == pytest.approx(down_s)
    a, b = socket.socketpair()
    with a, b:
        start = time.perf_counter()
        assert shaped.send(a, payload) == wire
        sent_s = time.perf_counter() - start
        assert read_frame(b) == payload
        b.sendall(frame(payload))  # already waiting in the buffer: receiving it costs only the emulation
        start = time.perf_counter()
        assert shaped.receive(a) == payload
        received_s = time.perf_counter() - start
    assert up_s <= sent_s <= up_s + SLACK_S
    assert down_s <= received_s <= down_s + SLACK_S


@torch.no_grad()
def test_a_request_through_the_server_takes_at_least_the_emulated_link(serve):
    identity = nn.Sequential(nn.Identity())
    server = serve(identity)
    x = torch.randn(16, 28, 28, generator=generator(0))  # the narrow point of vision_cnn(224): ~51 kB framed
    wire = len(frame(encode_tensor(x)))  # identity: the same frame goes up and comes down
    link_s = LINK.rtt_s + 8 * wire / LINK.uplink_bits_per_s + 8 * wire / LINK.downlink_bits_per_s
    with DeviceClient(nn.Sequential(), identity, server.address, ShapedLink(LINK), timeout_s=5.0) as client:
        results = [client.infer(x) for _ in range(3)]
    for result in results:
        assert not result.fallback and result.bytes_up == wire
        assert torch.equal(result.output, x)
        assert link_s <= result.latency_s <= link_s + SLACK_S


def test_a_slice_is_sent_without_the_rest_of_its_storage():
    whole = torch.arange(100_000, dtype=torch.float32)
    assert len(encode_tensor(whole[:10])) == len(encode_tensor(whole[:10].clone())) < 4_000


# --- Bad input and the two ends -------------------------------------------------------------------------


def test_a_link_without_bandwidth_is_refused():
    with pytest.raises(ValueError, match="uplink_bits_per_s"):
        LinkSpec("dead", uplink_bits_per_s=0, downlink_bits_per_s=1e6, rtt_s=0.01)
    with pytest.raises(ValueError, match="downlink_bits_per_s"):
        LinkSpec("dead", uplink_bits_per_s=1e6, downlink_bits_per_s=0, rtt_s=0.01)


def test_split_out_of_range_or_not_sequential_is_refused(model):
    for split in (-1, len(model) + 1):
        with pytest.raises(ValueError, match="split must be in 0..24"):
            split_model(model, split)
    with pytest.raises(TypeError):
        split_model(nn.Linear(2, 2), 1)


@torch.no_grad()
def test_device_only_needs_no_server_and_sends_nothing(model):
    device_part, cloud_part = split_model(model, len(model))
    assert len(cloud_part) == 0
    x = frames(1)[0]
    with DeviceClient(device_part, cloud_part, None, ShapedLink(LINK)) as client:
        result = client.infer(x)
    assert not result.fallback and result.bytes_up == 0
    assert result.latency_s < LINK.rtt_s  # no link delay was paid
    assert torch.equal(result.output, model(x))


def test_an_empty_cloud_part_gets_no_server_and_a_missing_address_is_refused(model):
    device_part, cloud_part = split_model(model, 7)
    with pytest.raises(ValueError, match="device-only"):
        CloudServer(nn.Sequential())
    with pytest.raises(ValueError, match="server_address"):
        DeviceClient(device_part, cloud_part, None, FAST)
    with pytest.raises(ValueError, match="timeout_s"):
        DeviceClient(device_part, cloud_part, ("127.0.0.1", 1), FAST, timeout_s=0)


def test_a_server_that_cannot_load_its_layers_fails_to_start(serve):
    with pytest.raises(RuntimeError, match="cannot load this layer here"):
        serve(nn.Sequential(Unloadable()))


@torch.no_grad()
def test_a_model_error_is_raised_on_the_device_not_swallowed(serve):
    cloud_part = nn.Sequential(nn.Linear(4, 2))
    server = serve(cloud_part)
    with DeviceClient(nn.Sequential(), cloud_part, server.address, FAST, timeout_s=5.0) as client:
        assert client.infer(torch.ones(1, 4)).output.shape == (1, 2)
        with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
            client.infer(torch.ones(1, 5))  # the cloud fails, the device falls back and fails the same way
        assert not client.infer(torch.ones(1, 4)).fallback  # and the next request reaches the cloud again


# --- Real against simulated ------------------------------------------------------------------------------


def test_measure_split_predicts_the_frames_and_never_beats_the_emulated_link(model):
    from collab_lib.hardware.calibrate import calibrate
    from collab_lib.hardware.network import transfer_time_s
    from collab_lib.system.serve import measure_split

    x = frames(1)[0]
    spec = calibrate("here", n=256, num_bytes=2**22, repeats=3, threads=1)
    (row,) = measure_split(model, 7, x, [LINK], spec, requests=3, warmup=1)
    with torch.no_grad():
        h, y = model[:7](x), model(x)
    up, down = len(frame(encode_tensor(h))), len(frame(encode_tensor(y)))
    tensor_up, tensor_down = h.numel() * 4, y.numel() * 4
    # The two predictions differ exactly by the frames' overhead bytes at the link's rates (hand computation).
    extra_s = (transfer_time_s(up - tensor_up, LINK.uplink_bits_per_s)
               + transfer_time_s(down - tensor_down, LINK.downlink_bits_per_s))
    assert row.predicted_s - row.predicted_tensor_bytes_s == pytest.approx(extra_s, rel=1e-9)
    assert row.link_s == pytest.approx(LINK.rtt_s + 8 * up / LINK.uplink_bits_per_s + 8 * down / LINK.downlink_bits_per_s)
    assert row.fallbacks == 0
    assert row.link_s <= row.real_s <= row.link_s + row.device_compute_s + row.cloud_compute_s + SLACK_S
    with pytest.raises(ValueError, match="no link to measure"):
        measure_split(model, len(model), x, [LINK], spec)
    with pytest.raises(ValueError, match="requests"):
        measure_split(model, 7, x, [LINK], spec, requests=0)
