"""Requests to the Kafka brokers: kafka-python's connections, served on the caller's thread while it waits (nothing
runs between runs), at most MAX_IN_FLIGHT requests in flight per broker, every wait bounded by a deadline."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

import kafka.errors as Errors
from kafka.future import Future
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector

from pettwin_checks.deadline import Deadline
from pettwin_checks.kafka.connection import KafkaConnection, kafka_python_config, tls_context

# A connection silent this long is closed by kafka-python, failing its requests. The run's deadline is kept by how
# long the check waits; a run that leaves a request unanswered closes every connection anyway (see snapshot).
REQUEST_TIMEOUT = 60.0
# Requests of this client in flight on one broker connection at most; more wait in the client's queue. A run sends a
# few requests a broker, but one per group to brokers older than 3.0: with thousands pipelined, a broker connection
# can stop answering altogether (bench/README.md).
MAX_IN_FLIGHT = 100
# Groups (per coordinator) or partitions (per leader) in one request. A batch's answers are the run's largest
# allocation and the process keeps the memory they took, so one round of batches is applied and dropped before the
# next is asked. Batches of 2,000 made a run at 2,000 groups 9 requests instead of 30, but no faster, and 3 MiB more.
BATCH = 500


def batches(items: list) -> list[list]:
    """`items` in batches of BATCH, in order."""
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


# A Fetch answer's record bytes at most (the broker stops adding partitions there). kafka-python refuses a frame
# above its receive_message_max_bytes (1 MB by default) by closing the connection: the limit is set above this, with
# room for the answer's per-partition fields.
MAX_ANSWER_BYTES = 16 * 2**20
RECEIVE_MAX_BYTES = MAX_ANSWER_BYTES + 8 * 2**20
# Turns of kafka-python's event loop that put a sent request on the wire: one runs the write task, the next finds the
# socket writable and sends (measured: two); one more to spare.
WRITE_TURNS = 3


# kafka-python logs every connection attempt and, at debug, every request (a SASL request holds the password). Its
# lines above debug go to this module's debug log, so a dead broker costs one clear line per run (the check's).
log = logging.getLogger(__name__)


class _ToDebug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("kafka-python %s: %s", record.levelname.lower(), record.getMessage())


_library_log = logging.getLogger("kafka")
_library_log.setLevel(logging.INFO)  # never DEBUG: request dumps would show SASL credentials
_library_log.propagate = False
if not any(isinstance(handler, _ToDebug) for handler in _library_log.handlers):
    _library_log.addHandler(_ToDebug())


class BrokerUnavailable(Exception):
    """The cluster could not be asked at all this run; the message says what failed and what to check."""


def reason(future: Future) -> str:
    """Why a request got no answer to use, for a warning."""
    return "timed out" if not future.is_done else str(future.exception)


class ClosedByBroker(Errors.KafkaConnectionError):
    """The broker closed a fresh connection before answering any request of this client, or sent what is not a Kafka
    answer (a TLS alert read as a frame): what a listener expecting TLS or SASL does to a client that speaks neither."""


def first_failure(connection, error: BaseException) -> BaseException:
    """What a failure on connections that never got an answer most likely means, for the message.

    A SASL connection that failed after the broker answered ApiVersions failed in the SASL exchange: the broker closes
    it on wrong credentials, and its error answer can be lost with the close (kafka-python drops data read together
    with the end of the stream). A listener without SASL answers the handshake ILLEGAL_SASL_STATE, kept as it is."""
    in_sasl = connection.sasl_enabled and connection.init_future.failed() and connection.broker_version_data is not None
    if in_sasl and not isinstance(error, Errors.IllegalSaslStateError):
        return Errors.SaslAuthenticationFailedError(f"connection closed during SASL authentication ({error})")
    if isinstance(error, Errors.KafkaProtocolError) or (
        isinstance(error, Errors.KafkaConnectionError) and "socket disconnected" in str(error)
    ):
        return ClosedByBroker(str(error))
    return error


class Wire:
    """The connections of one client, made on first use and kept across runs until closed. `send` queues a request
    for a broker and returns its answer's future; `wait` serves the connections until futures are answered or a
    deadline passes."""

    def __init__(self, connection: KafkaConnection, timeout: float) -> None:
        self._connection = connection
        # kafka-python's settings; a test may add to them before the first request (say, an older api_version)
        self.settings: dict[str, Any] = {
            **kafka_python_config(connection),
            "request_timeout_ms": int(REQUEST_TIMEOUT * 1000),
            "socket_connection_setup_timeout_ms": int(timeout * 1000),
            "socket_connection_setup_timeout_max_ms": int(timeout * 1000),
            # kafka-python's own cap fails requests past it; the queue here keeps below it (see pump)
            "max_in_flight_requests_per_connection": MAX_IN_FLIGHT + 1,
            "receive_message_max_bytes": RECEIVE_MAX_BYTES,
            "reconnect_backoff_max_ms": 2000,
            "metadata_max_age_ms": 2**31 - 1,  # the client asks for the metadata itself, once a run
        }
        self._net: NetworkSelector | None = None
        self._manager: KafkaConnectionManager | None = None
        self._queues: dict[Any, deque] = defaultdict(deque)  # requests waiting for room in flight, by node
        self._in_flight: Counter = Counter()
        self._pumping: set = set()
        self.unanswered = False  # a request got no answer in time (reset by the caller)
        self._answered_once = False  # a request got an answer on these connections: they work
        # Requests asked for, by Kafka API (the benchmark counts what reaches the wire separately).
        self.requests: Counter[str] = Counter()

    @property
    def manager(self) -> KafkaConnectionManager:
        # Made on first use, so the check starts while the broker is down, then reused for every run.
        if self._manager is None:
            try:
                context = tls_context(self._connection)
            except OSError as e:
                raise BrokerUnavailable(
                    f"cannot load the TLS files ({e}): check tls_ca_cert, tls_cert, tls_private_key and "
                    "tls_private_key_password"
                ) from None
            self._net = NetworkSelector(slow_task_threshold_secs=0)
            self._manager = KafkaConnectionManager(self._net, **self.settings, ssl_context=context)
        return self._manager

    def close(self) -> None:
        """Close every connection; requests still in flight fail at once, so no answer outlives the client."""
        if self._manager is not None:
            self._manager.close()
            self._net.poll(timeout_ms=0)
            self._net.close()
        self._manager = self._net = None
        self._answered_once = False
        self._queues.clear()
        self._in_flight.clear()

    def poll(self, seconds: float) -> None:
        """Serve the connections for `seconds`."""
        self._net.poll(timeout_ms=seconds * 1000)

    def push(self) -> None:
        """Put the requests sent so far on the wire without waiting for their answers: kafka-python writes on its
        event loop, so they would otherwise leave only when the caller next waits."""
        for _ in range(WRITE_TURNS):
            self._net.poll(timeout_ms=0)

    def api_version(self, request_class) -> int:
        """The version of an API the cluster and kafka-python both speak (from the bootstrap broker's ApiVersions)."""
        return self.manager.broker_version_data.api_version(request_class)

    def send(self, node_id: Any, request) -> Future:
        """Queue `request` for a broker; it goes on the wire while fewer than MAX_IN_FLIGHT of ours are there."""
        self.requests[type(request).__name__.removesuffix("Request")] += 1
        answer = Future()
        self._queues[node_id].append((request, answer))
        self.pump(node_id)
        return answer

    def pump(self, node_id: Any) -> None:
        if node_id in self._pumping:  # an answer that came at once, inside the loop below: the loop goes on
            return
        self._pumping.add(node_id)
        try:
            queue = self._queues[node_id]
            while queue and self._in_flight[node_id] < MAX_IN_FLIGHT:
                request, answer = queue.popleft()
                try:
                    connection = self.manager.get_connection(node_id, refresh_metadata_on_err=False)
                except Errors.KafkaError as e:  # in reconnect backoff, unknown broker, or a failed authentication
                    answer.failure(e)
                    continue
                self._in_flight[node_id] += 1
                connection.send_request(request).add_both(self.answered, node_id, connection, answer)
        finally:
            self._pumping.discard(node_id)

    def answered(self, node_id: Any, connection, answer: Future, value: Any) -> None:
        self._in_flight[node_id] -= 1
        if isinstance(value, BaseException):
            answer.failure(value if self._answered_once else first_failure(connection, value))
        else:
            self._answered_once = True
            answer.success(value)
        self.pump(node_id)

    def wait(self, futures: Iterable[Future], deadline: Deadline) -> list[Future]:
        """Serve the connections until every future is done or the deadline has passed; the ones not done."""
        pending = [future for future in futures if not future.is_done]
        while pending and deadline.remaining() > 0:
            self._net.poll(timeout_ms=deadline.remaining() * 1000, future=pending[0])
            pending = [future for future in pending if not future.is_done]
        if pending:
            self.unanswered = True
        return pending

    def in_rounds(self, chunks: dict[Any, list[list]], ask: Callable, deadline: Deadline) -> None:
        """Ask each broker for its items, a batch at a time, all brokers at once. `ask(node, batch)` sends the requests
        and returns them as (future, apply) pairs; `apply(future)` copies the answer, or the failure, where it belongs.

        Round k asks for every broker's k-th batch and waits its even share of what is left of `deadline`, so a broker
        that does not answer delays the others by at most that share; what is still unanswered gets the rest at the
        end. A round's answers are applied and dropped before the next round is asked.
        """
        rounds = max((len(node_chunks) for node_chunks in chunks.values()), default=0)
        unanswered: list[tuple[Future, Callable]] = []
        for number in range(rounds):
            asked = [
                pair
                for node, node_chunks in chunks.items()
                if number < len(node_chunks)
                for pair in ask(node, node_chunks[number])
            ]
            share = Deadline(deadline.remaining() / (rounds - number))
            pending = set(self.wait([future for future, _ in asked], share))
            for future, apply in asked:
                if future in pending:
                    unanswered.append((future, apply))
                else:
                    apply(future)
            del asked, pending  # before the next round is asked: one round of answers alive at a time
        if unanswered:
            self.wait([future for future, _ in unanswered], deadline)
            for future, apply in unanswered:
                apply(future)


def explain_failure(
    errors: list[BaseException], bootstrap: str, timeout: float, security_protocol: str = "PLAINTEXT"
) -> str:
    """What failed and what to check, from the connection or request errors of the run."""
    text = " ".join(f"{type(e).__name__} {e}" for e in errors).lower()
    tls_failed = "handshake failed" in text or "ssl" in text
    if any(isinstance(e, Errors.IllegalSaslStateError) for e in errors):
        return (
            f"the listener at {bootstrap} does not take SASL (it refused the SASL handshake): check "
            f"security_protocol ({security_protocol} here; PLAINTEXT or SSL for a listener without SASL) and that "
            "kafka_connect_str points to the SASL listener's port"
        )
    if tls_failed and "certificate" not in text and ("eof" in text or "wrong version" in text or "record" in text):
        return (
            f"the listener at {bootstrap} does not speak TLS (it dropped the TLS handshake): check security_protocol "
            f"({security_protocol} here; PLAINTEXT or SASL_PLAINTEXT for a listener without TLS) and that "
            "kafka_connect_str points to the TLS listener's port"
        )
    if "sasl" in text or "authentic" in text:
        return (
            f"authentication failed against {bootstrap}: check sasl_mechanism, sasl_plain_username and "
            "sasl_plain_password (for Confluent Cloud: an API key and secret of this cluster)"
        )
    if tls_failed or "certificate" in text:
        return (
            f"TLS handshake failed with {bootstrap}: check security_protocol, tls_ca_cert (the CA that signed the "
            "broker certificate), tls_cert/tls_private_key for mutual TLS, and tls_verify"
        )
    if "dns" in text or "resolv" in text or "name or service not known" in text:
        return f"cannot resolve {bootstrap}: check kafka_connect_str and DNS from the agent's host"
    if any(isinstance(e, ClosedByBroker) for e in errors) and security_protocol != "SASL_SSL":
        expected = {"PLAINTEXT": "TLS or SASL", "SSL": "SASL", "SASL_PLAINTEXT": "TLS"}[security_protocol]
        return (
            f"the brokers at {bootstrap} closed each connection at the first requests: their listener likely expects "
            f"{expected}, a protocol mismatch; check security_protocol ({security_protocol} here; for Confluent "
            "Cloud SASL_SSL) and that kafka_connect_str points to the listener you mean"
        )
    if "refused" in text or "unable to connect" in text or "connection" in text or "disconnected" in text:
        return (
            f"cannot connect to {bootstrap}: check kafka_connect_str, that the brokers are up, and that the "
            "agent's network can reach their listeners"
        )
    return (
        f"no answer from {bootstrap} within collection_timeout ({timeout:g}s): check that the brokers are up and "
        "reachable, and raise collection_timeout for a slow cluster"
    )
