"""The agent's life: start SDS and Envoy, keep a certificate, answer readiness, stop cleanly.

Start-up is ordered for speed: Envoy is started as soon as its bootstrap is written, before
anything else is imported (asyncio, grpc, cryptography, the xDS machinery: most of the agent's
own start-up; meshctl.agent.launch). While Envoy boots, the TLS channel to the CA connects, the
SDS socket (claimed beforehand, so an agent that could not serve it starts nothing) starts
listening, and then the key, the CSR and the call to the CA are made. Envoy asks for its
certificate once serve has sent it the clusters and listeners that need one, after the socket
listens (with MUTUAL_TLS to the control plane Envoy needs it at once, so SDS listens before
Envoy starts); Envoy's TLS listeners and clusters wait for the certificate
(`initial_fetch_timeout: 0s`), so nothing is served without one. From then on the certificate
is renewed at half its lifetime, each time with a new key, and pushed to Envoy without a restart.

SIGTERM and SIGINT drain Envoy (its inbound listeners stop accepting, gracefully), wait the
drain period, stop it and exit with its status; SIGHUP, SIGUSR1 and SIGUSR2 are passed on.
Those that arrive before the handlers are installed were held (meshctl.agent.signals) and are
acted on the same way once they are: an agent told to stop while it starts still stops its
Envoy. An Envoy whose admin port is not even listening yet holds no listener to drain, and is
stopped at once; one stopped before it handles SIGTERM itself (still booting) ends by the
signal, and the agent's status is then 143 (128 + SIGTERM), as a shell shows it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import signal
from typing import TYPE_CHECKING

from meshctl.agent import signals, socketpath
from meshctl.agent.envoy import EnvoyProcess, clear_pid
from meshctl.agent.launch import AgentOptions, write_bootstrap
from meshctl.errors import MeshctlError
from meshctl.model.secrets import WORKLOAD_CERTIFICATE

if TYPE_CHECKING:
    from meshctl.agent.caclient import CaClient
    from meshctl.agent.certificate import WorkloadCertificate
    from meshctl.agent.sds import SdsServer
    from meshctl.xds.debug_http import HttpGetServer, Response

__all__ = ["Agent"]

log = logging.getLogger("meshctl.agent")

NOT_LISTENING = -1
"""`_admin`'s status when Envoy's admin port refuses the connection: Envoy opens it before
any listener it is sent, so such an Envoy serves nothing yet."""
RETRY_FIRST, RETRY_MAX = 0.5, 60.0  # Istio's backoff for CA calls that keep failing


class Agent:
    """One agent run; `run` returns the exit status (Envoy's)."""

    def __init__(self, options: AgentOptions, envoy: EnvoyProcess | None) -> None:
        """`envoy`: what `launch` started or took over (None: start it once SDS listens)."""
        self.options = options
        self.sds_path = socketpath.checked(options.sds_socket)
        self.sds: SdsServer | None = None
        self.certificate: WorkloadCertificate | None = None
        self.envoy = envoy
        self.status_port = 0
        self._status: HttpGetServer | None = None
        self._stopping = asyncio.Event()
        self._ca: CaClient | None = None

    async def run(self) -> int:
        options = self.options
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.envoy is not None:
                self.envoy.watch()
            try:
                self._connect_ca()
                await self._start_sds()
                certifier = asyncio.create_task(self._keep_certified())
                tasks.append(certifier)
                if self.envoy is None:
                    write_bootstrap(options)
                    self.envoy = EnvoyProcess.start(options.envoy, options.workdir)
                    self.envoy.watch()
                await asyncio.sleep(0)  # the key and CSR made and the CSR sent; the readiness endpoint starts meanwhile
                await self._start_status()
            except BaseException:
                await self._abandon_start()
                raise
            self._handle_signals()
            _collect_from_now_on()
            log.info("agent running", extra={"identity": options.identity, "envoy_pid": self.envoy.pid,
                                             "status_port": self.status_port})
            return await self._until_done(certifier)
        finally:
            for task in tasks:
                task.cancel()
            if self._status is not None:
                await self._status.stop()
            if self.sds is not None:
                await self.sds.stop()
            if self._ca is not None:
                await self._ca.close()

    def _connect_ca(self) -> None:
        """The TLS channel to the CA, connecting from now on (in grpc's threads, on the other
        core) while the SDS server and cryptography load: the first CSR then costs one round
        trip. Only grpc and the CA's messages are loaded for it."""
        from meshctl.agent.caclient import CaClient

        options = self.options
        self._ca = CaClient(options.ca_address, options.ca_roots, options.token, cluster_id=options.proxy.cluster_id)

    async def _start_sds(self) -> None:
        """SDS on the socket, listening before the certificate is asked for (and before
        cryptography loads for it, ~18 ms). Envoy's first SDS request may come before the CA's
        answer, and then waits on its stream for the push; had the socket not been listening
        yet, Envoy would have tried again only after its back-off (up to 500 ms). Before Envoy
        starts when it needs its certificate to reach the control plane (MUTUAL_TLS) or was
        taken over (it reconnects by itself); else while it boots."""
        from meshctl.agent.sds import SdsServer

        self.sds = SdsServer(self.sds_path)
        await self.sds.start()

    async def _start_status(self) -> None:
        """The readiness endpoint."""
        from meshctl.xds.debug_http import HttpGetServer

        self._status = HttpGetServer({"/healthz/ready": self._ready})
        self.status_port = await self._status.start(self.options.status_host, self.options.status_port)

    async def _abandon_start(self) -> None:
        """The agent cannot serve the Envoy it just started: stop it rather than leave it waiting
        for a certificate forever. An Envoy taken over is left running, as a dead agent left it."""
        if self.envoy is not None and not self.envoy.adopted:
            await self.envoy.stop()
            clear_pid(self.options.workdir)

    async def _keep_certified(self) -> None:
        """Hold a certificate at all times: fetch, publish, sleep until rotation, again. A CA that
        refuses or cannot be reached is asked again with Istio's backoff, forever."""
        from meshctl.agent.caclient import CaCallError
        from meshctl.agent.certificate import BadAnswerError

        failures = 0
        while True:
            try:
                certificate = await self._certify()
            except (CaCallError, BadAnswerError) as exc:
                failures += 1
                delay = min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MAX) * random.uniform(0.9, 1.1)
                log.error("no certificate from the CA; asking again", extra={"error": str(exc),
                                                                             "retry_in_s": round(delay, 2)})
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.certificate = certificate
            if self.sds is not None:
                self.sds.publish(certificate)
            delay = certificate.rotation_delay()
            log.info("certificate issued", extra={"identity": self.options.identity,
                                                  "serial": f"{certificate.serial:x}",
                                                  "not_after": certificate.not_after.isoformat(),
                                                  "rotate_in_s": round(delay, 3)})
            await asyncio.sleep(delay)

    async def _certify(self) -> WorkloadCertificate:
        """A new key, a CSR for our identity, the CA's answer for it."""
        from meshctl.agent.certificate import WorkloadCertificate, certificate_request, new_key

        assert self._ca is not None
        key = new_key()
        chain = await self._ca.certify(certificate_request(key, self.options.identity), self.options.secret_ttl)
        return WorkloadCertificate.from_answer(key, chain)

    def _handle_signals(self) -> None:
        """The handlers, then the signals held since before Envoy started let through."""
        loop = asyncio.get_running_loop()
        for signum in signals.STOPPING:
            loop.add_signal_handler(signum, self._stopping.set)
        for signum in signals.FORWARDED:
            loop.add_signal_handler(signum, self._forward, signum)
        signals.release()

    def _forward(self, signum: int) -> None:
        assert self.envoy is not None
        log.info("passing a signal on to Envoy", extra={"signal": signal.Signals(signum).name})
        self.envoy.signal(signum)

    async def _until_done(self, certifier: asyncio.Task[None]) -> int:
        """Until Envoy exits (its status is ours) or we are told to stop (drain, then stop it).
        A certificate loop that fails unexpectedly stops Envoy too, and raises its error."""
        assert self.envoy is not None
        exited = asyncio.create_task(self.envoy.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping, certifier}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done():
            clear_pid(self.options.workdir)
            if self.envoy.failure:
                raise MeshctlError(self.envoy.failure)
            log.error("Envoy exited", extra={"pid": self.envoy.pid, "status": self.envoy.returncode})
            return 1 if self.envoy.returncode is None else _exit_status(self.envoy.returncode)
        if not certifier.done():
            await self._drain()
        await self.envoy.stop()
        log.info("Envoy stopped", extra={"pid": self.envoy.pid, "status": self.envoy.returncode})
        clear_pid(self.options.workdir)
        if certifier.done() and not certifier.cancelled() and certifier.exception() is not None:
            raise certifier.exception()  # type: ignore[misc]
        return _exit_status(self.envoy.returncode)

    async def _drain(self) -> None:
        """Istio's termination: inbound listeners drain gracefully, for the drain period."""
        assert self.envoy is not None
        status, body = await asyncio.to_thread(_admin, self.options.admin_port, "/drain_listeners?inboundonly&graceful",
                                               "POST")
        if status == NOT_LISTENING:
            log.info("Envoy is not serving yet (its admin port is not open): nothing to drain")
            return
        log.info("draining Envoy", extra={"duration_s": self.options.drain_duration})
        if status != 200:
            log.warning("could not ask Envoy to drain", extra={"status": status, "answer": body.strip()[:200]})
        try:
            await asyncio.wait_for(self.envoy.wait(), self.options.drain_duration)
        except TimeoutError:
            pass

    async def _ready(self, query: dict[str, list[str]]) -> Response:
        """istio-agent's readiness: Envoy LIVE (its config arrived and its listeners warmed) and
        holding the certificate this agent serves it."""
        from meshctl.xds.debug_http import text

        assert self.sds is not None
        if self.certificate is None:
            return text("not ready: no certificate from the CA yet", 503)
        if self.sds.acknowledged(WORKLOAD_CERTIFICATE) is False:
            return text("not ready: Envoy has not taken its certificate yet", 503)
        status, body = await asyncio.to_thread(_admin, self.options.admin_port, "/ready")
        if status != 200 or body.strip() != "LIVE":
            return text(f"not ready: Envoy is not LIVE ({body.strip() or 'no answer'})", 503)
        return text("ready")


def _collect_from_now_on() -> None:
    """Python's cyclic collector back on, if it was held off while the agent started (`meshctl
    agent` does, meshctl.cli.STARTING): what start-up made (modules, the proxy's settings, the
    SDS server) lives as long as the agent and is frozen first, so no collection walks it again.
    An agent run in a process that collects as usual (the tests') is left as it is."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _admin(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """(status, body) of one request to Envoy's admin API; status 0 if Envoy did not answer,
    NOT_LISTENING if nothing listens on its admin port (an Envoy still booting)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method),
                                    timeout=2) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError as exc:
        return NOT_LISTENING if isinstance(exc.reason, ConnectionRefusedError) else 0, ""
    except OSError:
        return 0, ""


def _exit_status(returncode: int | None) -> int:
    """Envoy's status as a shell would show it (128 + N after signal N); 0 for an Envoy this
    agent took over and stopped (a process that is not our child has no status for us)."""
    if returncode is None:
        return 0
    return 128 - returncode if returncode < 0 else returncode
