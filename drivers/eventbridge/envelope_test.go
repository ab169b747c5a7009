package eventbridge

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spate-dev/spate/drivers/stamp"
)

func testStamp() (stamp.Stamp, []byte) {
	s := stamp.Stamp{RunID: 0xfeedface, Producer: 3, Seq: 77, Intended: 1e18, Sent: 1e18 + 5, Txn: 9}
	b := make([]byte, stamp.Size)
	s.Put(b)
	return s, b
}

// TestDetailSize: the entry of a message is exactly the message's size as
// EventBridge counts it, down to the fixed part; the detail is JSON.
func TestDetailSize(t *testing.T) {
	_, st := testStamp()
	src, dt := "spate", "spate.message"
	fixed := timeBytes + len(src) + len(dt) + detailFixed
	for _, size := range []int{stamp.Size, 100, fixed - 1, fixed, fixed + 1, 256, 1024, 64 << 10, MaxEntryBytes} {
		body := make([]byte, size)
		copy(body, st)
		for i := stamp.Size; i < size; i++ {
			body[i] = byte(i * 7)
		}
		detail := buildDetail("00000000feedface", fixed, body[:stamp.Size], body[stamp.Size:])
		got := timeBytes + len(src) + len(dt) + len(detail)
		if want := max(size, fixed); got != want || EntrySize(size, src, dt) != want {
			t.Errorf("size %d: entry is %d bytes (EntrySize %d), want %d", size, got, EntrySize(size, src, dt), want)
		}
		var v struct{ Run, Spate, Pad string }
		if err := json.Unmarshal([]byte(detail), &v); err != nil {
			t.Fatalf("size %d: detail is not JSON: %v", size, err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(v.Spate); string(raw) != string(st) {
			t.Errorf("size %d: detail does not carry the stamp", size)
		}
	}
}

// TestStampOf parses the event shapes an SQS body can take: AWS's envelope
// (with resources), kumo's (event-bus-name, no resources), the bare detail
// left by a target's InputPath, keys in another order or spaced out (the
// slow path), and bodies that carry no stamp.
func TestStampOf(t *testing.T) {
	want, st := testStamp()
	b64 := base64.StdEncoding.EncodeToString(st)
	detail := `{"run":"00000000feedface","spate":"` + b64 + `","pad":"AAAA"}`
	for _, tc := range []struct {
		name string
		body string
		kind StampKind
	}{
		{"aws envelope", `{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"spate.message","source":"spate",` +
			`"account":"123456789012","time":"2026-11-26T12:00:00Z","region":"us-east-1","resources":[],"detail":` + detail + `}`, StampFound},
		{"kumo envelope", `{"account":"000000000000","detail":` + detail + `,"detail-type":"spate.message","event-bus-name":"spate-1",` +
			`"id":"0b5c","region":"us-east-1","source":"spate","time":"2026-11-26T12:00:00Z","version":"0"}`, StampFound},
		{"input path $.detail", detail, StampFound},
		{"spaced out", `{ "detail" : { "pad" : "x", "spate" : "` + b64 + `" }, "resources" : [ "arn:x" ] }`, StampFound},
		{"escaped slash in base64", `{"detail":{"spate":"` + strings.ReplaceAll(b64, "/", `\/`) + `"}}`, StampFound},
		{"probe", `{"detail":{"run":"1","spate":"` + notStamp + `","pad":"probe-x"}}`, StampProbe},
		{"another system's event", `{"version":"0","detail":{"orderId":"42"}}`, StampMissing},
		{"not JSON", `hello`, StampMissing},
		{"empty", ``, StampMissing},
		{"truncated stamp", `{"detail":{"spate":"U1AB"}}`, StampMissing},
		{"stamp not base64", `{"detail":{"spate":"` + strings.Repeat("!", 64) + `"}}`, StampMissing},
		{"detail a string", `{"detail":"{\"spate\":\"x\"}"}`, StampMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dst [stamp.Size]byte
			kind := StampOf(tc.body, &dst)
			if kind != tc.kind {
				t.Fatalf("kind %d, want %d", kind, tc.kind)
			}
			if kind != StampFound {
				return
			}
			got, err := stamp.Parse(dst[:])
			if err != nil || got != want {
				t.Errorf("stamp %+v (%v), want %+v", got, err, want)
			}
		})
	}
}
