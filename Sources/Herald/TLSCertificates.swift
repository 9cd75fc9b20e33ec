import Foundation
public import NIOSSL
import Synchronization

/// The certificate chain and private key a server speaks TLS with, read from PEM files and read
/// again by ``reload()`` (herald does on SIGHUP). Every TLS handshake takes the pair held at that
/// moment: connections opened after a reload get the renewed certificate, connections already
/// open keep theirs and stay up.
public final class TLSCertificates: Sendable {
    /// Why a pair could not be read.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private struct Pair: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
    }

    /// The PEM file of the certificate chain, the server's own certificate first.
    public let certificatePath: String
    /// The PEM file of the private key.
    public let keyPath: String
    private let pair: Mutex<Pair>

    /// Reads the pair; throws when a file cannot be read or the key is not the certificate's.
    public init(certificatePath: String, keyPath: String) throws(Failure) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        pair = Mutex(try Self.load(certificatePath: certificatePath, keyPath: keyPath))
    }

    /// Reads the files again; on failure the pair held stays in use, and the error says why.
    public func reload() throws(Failure) {
        let fresh = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        pair.withLock { $0 = fresh }
    }

    /// The subject of the certificate in use, for logs.
    public var subject: String {
        pair.withLock { String(describing: $0.chain[0]) }
    }

    /// A server configuration whose handshakes use the pair held when each one starts.
    public var serverConfiguration: TLSConfiguration {
        let initial = pair.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: initial.chain.map { .certificate($0) }, privateKey: .privateKey(initial.key))
        configuration.sslContextCallback = { [self] _, promise in
            let current = pair.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain.map { .certificate($0) }
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return configuration
    }

    private static func load(certificatePath: String, keyPath: String) throws(Failure) -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw Failure(description: "\(certificatePath) holds no PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw Failure(description: "\(certificatePath) holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw Failure(description: "\(keyPath) holds no PEM private key (\(error))")
        }
        do {
            // A context refuses a key that is not the certificate's.
            _ = try NIOSSLContext(
                configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw Failure(description: "the key of \(keyPath) is not the key of \(certificatePath)'s certificate (\(error))")
        }
        return Pair(chain: chain, key: key)
    }
}
