package eventbridge

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// readCloserOnly hides every method of a request body but Read and Close.
//
// Why: smithy-go (v1.28.9, the newest) sends a request body wrapped so
// that, once closed, WriteTo returns io.EOF as an error, and it closes the
// body as soon as the response's headers are in. net/http's writeLoop may
// not be done with the body then: after the declared Content-Length it
// checks for extra bytes, with io.Copy, which prefers WriteTo. The EOF it
// gets is a write error, so it closes the connection while the response
// body is still being read, and the SDK reports "deserialization failed
// ... use of closed network connection" with status 200. Only responses
// still arriving at that moment are hit: ReceiveMessage batches of large
// messages. The SDK retries the call, and the messages the lost response
// had delivered stay invisible for the visibility timeout: to a load test,
// ten messages 30 s late that the system under test delivered on time.
// Through Read alone, the closed body reads as plain io.EOF, which io.Copy
// takes as the end, and the connection is kept.
type readCloserOnly struct{ io.ReadCloser }

// bodyReadOnlyClient passes every request's body to c as a readCloserOnly.
type bodyReadOnlyClient struct{ c aws.HTTPClient }

func (b bodyReadOnlyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		// A shallow copy: the caller keeps its request and closes its
		// own body, which is the one underneath.
		req = req.WithContext(req.Context())
		req.Body = readCloserOnly{req.Body}
	}
	return b.c.Do(req)
}
