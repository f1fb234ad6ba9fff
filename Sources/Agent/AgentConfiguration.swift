import Foundation
import Signatures

/// Everything an agent is built from. The command line only fills this in, so tests build and run an agent
/// in-process the same way.
public struct AgentConfiguration: Sendable {
    /// The desired-state repository: a local path, or a remote URL fetched into a mirror in the data dir.
    public var repository: String
    /// Credentials and trust for a remote repository.
    public var remote: RemoteSettings
    /// Accept a branch tip that does not descend from the last applied commit (refused by default).
    public var allowRewrites: Bool
    /// Which commits must carry a trusted signature before they are applied (`--verify head|all`); nil: none.
    public var verify: VerifyMode?
    /// The keys trusted to sign: an allowed_signers file for SSH signatures, a keyring and fingerprints for OpenPGP.
    public var signatures: SignaturePolicy
    public var branch: String
    /// teal's state, logs and working copies.
    public var dataDir: String
    /// How often the branch tip is read (one ref lookup).
    public var pollInterval: Duration
    /// How often what runs is compared with the desired state when nothing was committed.
    public var driftInterval: Duration
    /// How often dead colors are looked for.
    public var supervisionInterval: Duration
    /// The admin endpoint; nil for none.
    public var admin: AdminServer.Configuration?
    /// Waits between passes that failed transiently.
    public var retry: Backoff
    /// `teal apply` gives up on transient failures after this many attempts in a row.
    public var applyAttempts: Int
    /// The host named in notes.
    public var host: String
    /// argv of the router process; by default this executable's `router --data-dir D`.
    public var routerCommand: [String]?
    /// Commit statuses and the generic webhook, resolved (`ReportSettings.resolved`); nothing reported by default.
    public var reports: ReportSettings

    public init(repository: String, branch: String = "main", dataDir: String, pollInterval: Duration = .seconds(1),
                driftInterval: Duration = .seconds(5), supervisionInterval: Duration = .seconds(1),
                admin: AdminServer.Configuration? = AdminServer.Configuration(), retry: Backoff = Backoff(),
                applyAttempts: Int = 8, host: String = ProcessInfo.processInfo.hostName, routerCommand: [String]? = nil,
                remote: RemoteSettings = RemoteSettings(), allowRewrites: Bool = false,
                verify: VerifyMode? = nil, signatures: SignaturePolicy = SignaturePolicy(), reports: ReportSettings = ReportSettings()) {
        self.reports = reports
        self.repository = repository
        self.remote = remote
        self.allowRewrites = allowRewrites
        self.verify = verify
        self.signatures = signatures
        self.branch = branch
        self.dataDir = dataDir
        self.pollInterval = pollInterval
        self.driftInterval = driftInterval
        self.supervisionInterval = supervisionInterval
        self.admin = admin
        self.retry = retry
        self.applyAttempts = applyAttempts
        self.host = host
        self.routerCommand = routerCommand
    }
}

import Drivers
import Reconcile
