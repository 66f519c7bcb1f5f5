"""Real split inference: the cloud layers in a separate process, the device layers in this one, a shaped link
between them.

:mod:`collab_lib.system.partition` *predicts* the latency of a cut (Neurosurgeon, Kang et al., ASPLOS 2017);
this module *runs* it, so the prediction can be checked against a clock:

* :class:`CloudServer` starts a separate process that holds layers k+1..n and answers requests over a
  loopback TCP socket. A request is one length-prefixed frame holding a ``torch.save``-d tensor; the
  response is a frame holding the output tensor.
* :class:`ShapedLink` makes every send take RTT/2 + 8 * bytes / uplink rate and every receive
  RTT/2 + 8 * bytes / downlink rate, by sleeping in the device process (the socket itself is loopback).
* :class:`DeviceClient` runs layers 1..k, sends the activation, and returns the cloud's answer. If the
  server is dead, refuses, or times out, it runs layers k+1..n itself (it holds a copy) and marks the
  result as a fallback: a request is never lost.

Empty parts follow the cuts of :func:`~collab_lib.system.partition.split_latencies`: ``split=0`` (cloud
only, an empty device part) sends the input; ``split=n`` (device only, an empty cloud part) sends nothing
and needs no server, so :class:`CloudServer` refuses an empty cloud part.

Departures from a real deployment: the link is emulated per request (no queueing, no sharing of bandwidth
between requests or clients, no loss), and device and cloud share this machine's cores.
"""

from __future__ import annotations

import io
import multiprocessing
import socket
import statistics
import struct
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import torch
from torch import nn

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.hardware.calibrate import measure_latency_s
from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.profile import profile_model
from collab_lib.hardware.specs import DeviceSpec, LinkSpec
from collab_lib.models import split_model
from collab_lib.system.partition import split_latencies

LOOPBACK = "127.0.0.1"  # the server listens on loopback only: the network is emulated, not used
_HEADER = struct.Struct("!Q")  # a frame: payload length as an 8-byte big-endian unsigned int, then payload
_POLL_S = 0.1  # how often an idle server checks for a stop request or a dead parent


def _is_empty(part: nn.Module) -> bool:
    return isinstance(part, nn.Sequential) and len(part) == 0


# --- Wire format -------------------------------------------------------------------------------------


def encode_tensor(tensor: torch.Tensor) -> bytes:
    """``torch.save`` to bytes. Adds about 1.5 kB of zip-archive overhead to the tensor's own bytes."""
    if tensor.untyped_storage().nbytes() > tensor.nbytes:  # a slice: torch.save would send its whole storage
        tensor = tensor.clone()
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    return buffer.getvalue()


def decode_tensor(payload: bytes) -> torch.Tensor:
    """Inverse of :func:`encode_tensor`; ``weights_only`` so that a frame cannot run code."""
    return torch.load(io.BytesIO(payload), weights_only=True)


def frame(payload: bytes) -> bytes:
    """Length prefix + payload: what crosses the link."""
    return _HEADER.pack(len(payload)) + payload


def _recv_exact(sock: socket.socket, num_bytes: int) -> bytes:
    buffer = bytearray(num_bytes)
    view, got = memoryview(buffer), 0
    while got < num_bytes:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("connection closed by the peer")
        got += n
    return bytes(buffer)


def read_frame(sock: socket.socket) -> bytes:
    """The payload of the next frame on ``sock``."""
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return _recv_exact(sock, length)


# --- The shaped link -----------------------------------------------------------------------------------


def _sleep_until(deadline: float) -> None:
    # time.sleep may wake early on some platforms: loop until the deadline has passed.
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)


@dataclass(frozen=True)
class ShapedLink:
    """A :class:`~collab_lib.hardware.specs.LinkSpec` emulated on a loopback socket by sleeping.

    A send holds the frame for RTT/2 + 8 * bytes / uplink rate, then writes it (so the server sees it no
    earlier than the emulated arrival); a receive hands a frame over RTT/2 + 8 * bytes / downlink rate after
    its first bytes arrived (so the server's compute and the downlink add up, as in
    :func:`~collab_lib.system.partition.split_latencies`). Bytes are whole frames: length prefix,
    ``torch.save`` overhead and tensor.

    Precision: never faster than the emulated link (sleeps run to the deadline on a monotonic clock); slower
    by the loopback copy (well under 1 ms per MB) plus the OS's wake-up latency, typically 0.1 ms on an
    idle Linux machine and several ms on a loaded one or on Windows.
    """

    link: LinkSpec

    def uplink_delay_s(self, num_bytes: int) -> float:
        return self.link.rtt_s / 2 + transfer_time_s(num_bytes, self.link.uplink_bits_per_s)

    def downlink_delay_s(self, num_bytes: int) -> float:
        return self.link.rtt_s / 2 + transfer_time_s(num_bytes, self.link.downlink_bits_per_s)

    def send(self, sock: socket.socket, payload: bytes) -> int:
        """Send one frame after the uplink delay; returns the bytes sent."""
        data = frame(payload)
        _sleep_until(time.perf_counter() + self.uplink_delay_s(len(data)))
        sock.sendall(data)
        return len(data)

    def receive(self, sock: socket.socket) -> bytes:
        """The next frame's payload, handed over the downlink delay after its first bytes arrived."""
        header = _recv_exact(sock, _HEADER.size)
        arrived = time.perf_counter()  # loopback: about when the server sent it
        (length,) = _HEADER.unpack(header)
        payload = _recv_exact(sock, length)
        _sleep_until(arrived + self.downlink_delay_s(_HEADER.size + length))
        return payload


# --- The cloud process ---------------------------------------------------------------------------------


def _handle(conn: socket.socket, model: nn.Module) -> None:
    """Answer requests on one connection until the client closes it."""
    with conn, torch.no_grad():  # no_grad is per thread, so it is entered here
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                x = decode_tensor(read_frame(conn))
                conn.sendall(frame(encode_tensor(model(x))))
        except Exception:
            # The client left, or the model raised: close the connection. The client then runs the same
            # layers itself, so a model error is raised there, where the caller sees it.
            return


def _serve(model_bytes: bytes, control: Connection) -> None:
    """Entry point of the cloud process: load the layers, listen, report the port, serve until told."""
    torch.set_num_threads(1)  # the device process has its own core; two processes must not fight over both
    try:
        model = torch.load(io.BytesIO(model_bytes), weights_only=False)
        listener = socket.create_server((LOOPBACK, 0))  # port 0: the OS picks a free one
    except Exception as error:
        control.send(("error", f"{type(error).__name__}: {error}"))
        return
    with listener:
        listener.settimeout(_POLL_S)
        control.send(("ready", listener.getsockname()[1]))
        while not control.poll():  # a stop message, or end-of-file when the parent has died
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_handle, args=(conn, model), daemon=True).start()


class CloudServer:
    """The cloud part of a split model, served by a separate process on a loopback port.

    The process is started with the ``spawn`` method (a fresh interpreter: works from a notebook, under
    pytest and on every OS) and uses one torch thread. The layers reach it as ``torch.save`` bytes of the
    whole module, pickled at :meth:`start`: like deploying weights, the server gets its own copy, not
    shared memory, and the layer classes must be importable by the child (``torch.nn`` layers and
    :mod:`collab_lib.models` are; a class defined in a notebook cell is not). Each connection is served by
    its own thread; the module runs in the mode it was given (call ``.eval()`` first if it has dropout or
    batch norm).

    The process exits by itself if this one dies (its control pipe closes). Use as a context manager, or
    call :meth:`stop`.

    Parameters
    ----------
    cloud_part:
        The layers after the cut, e.g. the second part of :func:`~collab_lib.models.split_model`. Not empty: a
        device-only split needs no server.
    start_timeout_s:
        How long :meth:`start` waits for the process to import torch, load the layers and listen.
    """

    def __init__(self, cloud_part: nn.Module, start_timeout_s: float = 60.0) -> None:
        if _is_empty(cloud_part):
            raise ValueError("cloud_part is empty: a device-only split needs no server")
        if not start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be > 0, got {start_timeout_s}")
        self.cloud_part = cloud_part
        self.start_timeout_s = start_timeout_s
        self.address: tuple[str, int] | None = None  # (host, port) while running
        self._process: BaseProcess | None = None
        self._control: Connection | None = None

    def start(self) -> CloudServer:
        """Start the process; return once it accepts connections. Raises ``RuntimeError`` if it cannot."""
        if self._process is not None:
            raise RuntimeError("server already started")
        buffer = io.BytesIO()
        torch.save(self.cloud_part, buffer)
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(buffer.getvalue(), child_end),
                                        name="collab-cloud-server", daemon=True)
        self._process.start()
        child_end.close()  # so that the child's death reads as end-of-file here
        status, value = "error", f"not ready after {self.start_timeout_s} s"
        if self._control.poll(self.start_timeout_s):
            try:
                status, value = self._control.recv()
            except EOFError:
                value = "the process exited during start-up (its stderr says why)"
        if status != "ready":
            self.stop()
            raise RuntimeError(f"cloud server failed to start: {value}")
        self.address = (LOOPBACK, value)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the process to exit; kill it if it has not within ``timeout_s``. Safe to call twice."""
        if self._process is None:
            return
        try:
            self._control.send("stop")
        except OSError:
            pass  # the process is already gone
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._control.close()
        self._process = self._control = self.address = None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (tests use it to kill the server)."""
        return None if self._process is None else self._process.pid

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def __enter__(self) -> CloudServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- The device ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceResult:
    """One request. ``bytes_up``: frame bytes pushed through the uplink (0 if nothing was sent)."""

    output: torch.Tensor
    latency_s: float
    fallback: bool  # True: the cloud did not answer and the device ran the cloud part itself
    reason: str | None  # why it fell back, e.g. "ConnectionRefusedError: [Errno 111] Connection refused"
    bytes_up: int


class DeviceClient:
    """Runs the device part, offloads the rest through a shaped link, falls back to local on failure.

    Parameters
    ----------
    device_part, cloud_part:
        The two parts of :func:`~collab_lib.models.split_model`. The device keeps ``cloud_part`` to answer when
        the cloud does not. An empty ``cloud_part`` is a device-only split: nothing is sent.
    server_address:
        ``CloudServer.address``; ``None`` only for a device-only split.
    link:
        The emulated link.
    timeout_s:
        Bound on each socket operation (connecting, sending, waiting for the answer), on top of the
        emulated link delays. A hung server costs at most this before the device falls back.

    One connection is kept open and reopened after a failure, so a restarted server is used again. Not
    thread-safe: use one client per thread.
    """

    def __init__(self, device_part: nn.Module, cloud_part: nn.Module, server_address: tuple[str, int] | None,
                 link: ShapedLink, timeout_s: float = 5.0) -> None:
        if server_address is None and not _is_empty(cloud_part):
            raise ValueError("server_address is None but the cloud part is not empty")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.device_part, self.cloud_part = device_part, cloud_part
        self.server_address, self.link, self.timeout_s = server_address, link, timeout_s
        self._sock: socket.socket | None = None

    def infer(self, x: torch.Tensor) -> InferenceResult:
        """Run one request end to end; ``latency_s`` is wall time, link emulation included."""
        start = time.perf_counter()
        with torch.no_grad():
            h = self.device_part(x)
            if _is_empty(self.cloud_part):
                return InferenceResult(h, time.perf_counter() - start, False, None, 0)
            payload, bytes_up = encode_tensor(h), 0
            try:
                sock = self._connect()
                bytes_up = self.link.send(sock, payload)
                y = decode_tensor(self.link.receive(sock))
                fallback, reason = False, None
            except OSError as error:  # refused, reset, closed (ConnectionError) or timed out (TimeoutError)
                self.close()
                y = self.cloud_part(h)
                fallback, reason = True, f"{type(error).__name__}: {error}"
        return InferenceResult(y, time.perf_counter() - start, fallback, reason, bytes_up)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self.server_address, timeout=self.timeout_s)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- Real against simulated ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitMeasurement:
    """One link: the real split's median latency next to the simulator's prediction (all in seconds)."""

    link: LinkSpec
    real_s: float  # median wall time of the requests, emulated link included
    predicted_s: float  # split_latencies' cut, with the frames' bytes (what really crosses the link)
    predicted_tensor_bytes_s: float  # split_latencies' cut as it stands: the tensors' bytes
    link_s: float  # the emulated link's delays (RTT plus both frames at the link's rates)
    device_compute_s: float  # measured: median of the device part alone
    cloud_compute_s: float  # measured: median of the cloud part alone
    fallbacks: int

    @property
    def unmodelled_s(self) -> float:
        """Real time no term of the prediction covers: serialization, socket copies, process wake-ups."""
        return self.real_s - self.link_s - self.device_compute_s - self.cloud_compute_s


def measure_split(model: nn.Sequential, split: int, x: torch.Tensor, links: list[LinkSpec], spec: DeviceSpec,
                  requests: int = 25, warmup: int = 3, timeout_s: float = 5.0) -> list[SplitMeasurement]:
    """Run ``model`` cut after layer ``split`` over each emulated link, and predict the same cut.

    ``spec`` (a DeviceSpec) is used for both sides of the prediction with efficiency 1: device and cloud
    are this machine, so pass :func:`~collab_lib.hardware.calibrate.calibrate`'s spec. One server serves
    every link; ``requests`` are timed after ``warmup`` untimed ones. Run with one torch thread (the
    server uses one) so that on a 2-core machine each side has a core.
    """
    positive_int("requests", requests)
    non_negative_int("warmup", warmup)
    device_part, cloud_part = split_model(model, split)
    if _is_empty(cloud_part):
        raise ValueError(f"split={split} runs everything on the device: there is no link to measure")
    layers = profile_model(model, x)
    with torch.no_grad():
        h, y = device_part(x), model(x)
    bytes_up, bytes_down = len(frame(encode_tensor(h))), len(frame(encode_tensor(y)))
    device_s = measure_latency_s(device_part, x)
    cloud_s = measure_latency_s(cloud_part, h)
    rows = []
    with CloudServer(cloud_part) as server:
        for link in links:
            cut = split_latencies(layers, spec, spec, link)[split]
            frames_s = (transfer_time_s(bytes_up, link.uplink_bits_per_s)
                        + transfer_time_s(bytes_down, link.downlink_bits_per_s))
            shaped = ShapedLink(link)
            with DeviceClient(device_part, cloud_part, server.address, shaped, timeout_s=timeout_s) as client:
                results = [client.infer(x) for _ in range(warmup + requests)][warmup:]
            rows.append(SplitMeasurement(
                link=link,
                real_s=statistics.median(r.latency_s for r in results),
                predicted_s=cut.device_s + cut.rtt_s + frames_s + cut.cloud_s,
                predicted_tensor_bytes_s=cut.total_s,
                link_s=link.rtt_s + frames_s,
                device_compute_s=device_s,
                cloud_compute_s=cloud_s,
                fallbacks=sum(r.fallback for r in results),
            ))
    return rows
