"""Async httpx clients for DDS, DMS and the domain server, pydantic wire models, the
protocol-level task engine, and (in ``domain_client.emulator``) an emulator of the three services.

The wire contract is ``docs/protocol.md``; the table below maps each disagreement of its §5 to
the choice made here and where it is implemented and tested (tests in ``tests/domain_client``).

=====  ====================================================  ===================================
§5 #   resolution                                            implemented / tested
=====  ====================================================  ===================================
1      [PM] wire format, [SDK] strictness where listed       throughout
2      ``GET /tasks`` without query (``capability=`` opt.)   dms.DmsClient.lease / case 2
3      list + raw download by default; multipart kept        storage.DownloadMode / cases 12, 30
4      lease host and domain; log when a CID differs         storage.TaskStorage.materialize /
                                                             test_cid_for_another_domain...
5      [PM] TTL ratios, bounded by [SDK] 30 s / token life   heartbeat.heartbeat_delay_s / 7, 8
6      events sent until acknowledged ([PM])                 heartbeat.HeartbeatDriver / events
7      changed task/domain/capability = lost lease           lease.LeaseSession.apply / 11
8      lease needs domain, URL, token, expiries in future    lease.lease_problem / rejected lease
9      failed initial heartbeat: report nothing              engine.TaskEngine / initial hb test
10     unknown capability: "no runner registered for ..."    receipts.unknown_capability_body/11
11     any heartbeat failure = lost lease, no retry          dms.DmsClient.heartbeat / 10, 43
12     current domain token read before every request        tokens.DomainToken / 15, 16, 44
13     info: all three keys; missing multipart = try+fall    storage._exceeds_limits / 16, info
14     chunked init sends real name/type + existing_id       domain.upload_chunked / 16
15     (runner: optional outputs) not in domain_client       app/
16     (runner: missing COLMAP binaries) not here            app/
17     current token everywhere                              tokens.DomainToken / 15, 44
18     receipt artifacts sorted by logical_path              storage.TaskStorage.artifacts
19     reason cut to 4096 bytes; oversized details -> null   receipts / reason + details tests
20     one trailing ``/`` of DMS_BASE_URL stripped           dms.DmsPaths / case 2
21     lowercase address in SIWE message and JSON            siwe.Wallet / case 23
22     ``NODE_URL`` ignored                                  config.load_node_config
23     inbound endpoints are app/'s                          app/
24     DMS 409 on lease = no work                            dms.DmsClient.lease / case 1 extras
25     progress <= 64 KiB, DMS responses <= 2 MiB            dms, heartbeat / limits tests
=====  ====================================================  ===================================
"""

from domain_client._http import RetryPolicy
from domain_client.auth import DdsAuth, TokenConfig
from domain_client.cid import CidTarget, parse_cid
from domain_client.config import NodeConfig, load_node_config
from domain_client.dds import DdsClient
from domain_client.dms import DmsClient
from domain_client.domain import DomainClient, DownloadedItem
from domain_client.engine import (
    CycleOutcome,
    EngineConfig,
    Handler,
    RunnerError,
    TaskContext,
    TaskEngine,
)
from domain_client.errors import (
    BadRequestError,
    ChunkedUploadUnsupportedError,
    ConfigError,
    ConflictError,
    DdsError,
    DomainClientError,
    EmptyContentError,
    InvalidInputError,
    InvalidKeyError,
    LeaseLost,
    LoginError,
    NameRuleError,
    NonceError,
    NotFoundError,
    NotRegisteredError,
    OtherStatusError,
    ProtocolViolation,
    RequestTimeoutError,
    ResponseError,
    ServerError,
    TaskCancelled,
    TransportError,
    UnauthorizedError,
)
from domain_client.heartbeat import HeartbeatDriver, ProgressReporter
from domain_client.lease import LeaseSession
from domain_client.models import (
    ArtifactRecord,
    CompleteBody,
    CreateJobRequest,
    CreateTaskRequest,
    DataMetadata,
    FailBody,
    JobMeta,
    Lease,
    LeaseUpdate,
    ServerInfo,
    SiweNonce,
    SiweToken,
    TaskSpec,
)
from domain_client.node import LeaseNode, build_lease_node
from domain_client.registration import Registrar, RegistrationConfig
from domain_client.siwe import Wallet, build_siwe_message
from domain_client.storage import LocalItem, MaterializedInput, TaskStorage
from domain_client.tokens import AccessTokenSource, DomainToken, StaticTokenSource

__all__ = [
    "AccessTokenSource",
    "ArtifactRecord",
    "BadRequestError",
    "ChunkedUploadUnsupportedError",
    "CidTarget",
    "CompleteBody",
    "ConfigError",
    "ConflictError",
    "CreateJobRequest",
    "CreateTaskRequest",
    "CycleOutcome",
    "DataMetadata",
    "DdsAuth",
    "DdsClient",
    "DdsError",
    "DmsClient",
    "DomainClient",
    "DomainClientError",
    "DomainToken",
    "DownloadedItem",
    "EmptyContentError",
    "EngineConfig",
    "FailBody",
    "Handler",
    "HeartbeatDriver",
    "InvalidInputError",
    "InvalidKeyError",
    "JobMeta",
    "Lease",
    "LeaseLost",
    "LeaseNode",
    "LeaseSession",
    "LeaseUpdate",
    "LocalItem",
    "LoginError",
    "MaterializedInput",
    "NameRuleError",
    "NodeConfig",
    "NonceError",
    "NotFoundError",
    "NotRegisteredError",
    "OtherStatusError",
    "ProgressReporter",
    "ProtocolViolation",
    "Registrar",
    "RegistrationConfig",
    "RequestTimeoutError",
    "ResponseError",
    "RetryPolicy",
    "RunnerError",
    "ServerError",
    "ServerInfo",
    "SiweNonce",
    "SiweToken",
    "StaticTokenSource",
    "TaskCancelled",
    "TaskContext",
    "TaskEngine",
    "TaskSpec",
    "TaskStorage",
    "TokenConfig",
    "TransportError",
    "UnauthorizedError",
    "Wallet",
    "build_lease_node",
    "build_siwe_message",
    "load_node_config",
    "parse_cid",
]
