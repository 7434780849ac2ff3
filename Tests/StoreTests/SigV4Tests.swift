import Foundation
import MarqueeStore
import Testing

@Suite("SigV4")
struct SigV4Tests {
    /// AWS's published example "GET Object" (Amazon S3 API Reference, Signature Version 4,
    /// header-based authentication examples).
    @Test("AWS's GET Object example signs to the published signature")
    func awsExample() {
        let signer = SigV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let headers = signer.sign(
            method: "GET", path: "/test.txt", query: [], headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", date: Date(timeIntervalSince1970: 1_369_353_600))
        let authorization = headers.first { $0.0 == "Authorization" }?.1
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        #expect(headers.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    @Test("Keys and query values are encoded the way SigV4 canonicalizes them")
    func encoding() {
        #expect(SigV4.encode("titles/a b/ü+x~.m4s", keepSlash: true) == "titles/a%20b/%C3%BC%2Bx~.m4s")
        #expect(SigV4.encode("a/b=c", keepSlash: false) == "a%2Fb%3Dc")
    }
}
