"""Async httpx clients for DDS, DMS and the domain server, pydantic wire models and the
protocol-level task engine (the emulator of the three services is the top-level ``emulator``
package, a development tool outside the wheel).

The wire contract is ``docs/protocol.md``; ``domain_client/README.md`` maps each disagreement
of its §5 to the choice made here and to where it is implemented and tested. Errors form one
hierarchy, drawn in :mod:`domain_client.errors`.
"""

from domain_client.auth import DdsAuth, TokenConfig
from domain_client.cid import CidTarget, parse_cid
from domain_client.config import NodeConfig
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
from domain_client.retry import RetryPolicy
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
    "parse_cid",
]
