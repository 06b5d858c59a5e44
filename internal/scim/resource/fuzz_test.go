package resource

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"net/http"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// FuzzFromSCIM checks that any JSON object maps to a spec or a 400, and that what the
// server returns maps back to the same spec (Okta's GET-then-PUT changes nothing).
func FuzzFromSCIM(f *testing.F) {
	f.Add([]byte(oktaUser))
	f.Add([]byte(`{"userName":"a","active":"False","userType":"admin","urn:x:y:User":{"stackUserType":"Moderator","k":[1,{"a":null}]}}`))
	f.Add([]byte(`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"d","USERNAME":"b","emails":{"value":"x","primary":"true"}}`))
	f.Add([]byte(`{"userName":"a","name":{"givenName":""},"phoneNumbers":[{"value":""},"123"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m"}}`))
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, data []byte) {
	{
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var doc map[string]any
		if d.Decode(&doc) != nil || doc == nil {
			return
		}
		for _, opts := range []Options{{}, {RoleSchemas: []string{"urn:x:y:User"}}} {
			spec, err := FromSCIM(doc, opts)
			if err != nil {
				if se := scimerr.As(err); se == nil || se.Status != http.StatusBadRequest {
					t.Fatalf("FromSCIM: %v", err)
				}
				continue
			}
			u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Name: "u-1"}, Spec: spec}
			out := ToSCIM(u, "https://x/Users/u-1")
			raw, err := json.Marshal(out)
			if err != nil {
				t.Fatalf("ToSCIM result does not marshal: %v", err)
			}
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			var back map[string]any
			if err := d.Decode(&back); err != nil {
				t.Fatal(err)
			}
			again, err := FromSCIM(back, opts)
			if err != nil {
				t.Fatalf("the server's own document is rejected: %v\n%s", err, raw)
			}
			if !reflect.DeepEqual(canonical(t, spec), canonical(t, again)) {
				t.Fatalf("round trip changed the spec:\n%+v\n%+v\n%s", spec, again, raw)
			}
		}
	}
}

func canonical(t *testing.T, s scimv1.StackUserSpec) scimv1.StackUserSpec {
	if s.AdditionalAttributes != nil {
		var v any
		d := json.NewDecoder(bytes.NewReader(s.AdditionalAttributes.Raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(v)
		s.AdditionalAttributes.Raw = raw
	}
	return s
}

// TestFromSCIMMutations runs the FuzzFromSCIM property over deterministic random
// mutations of its seeds: native fuzzing of this package is slow because the binary
// links the Kubernetes API types, so this keeps the property exercised in every run.
func TestFromSCIMMutations(t *testing.T) {
	seeds := []string{oktaUser,
		`{"userName":"a","active":"False","userType":"admin","urn:x:y:User":{"stackUserType":"Moderator","k":[1,{"a":null}]}}`,
		`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"d","emails":{"value":"x","primary":"true"}}`,
	}
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 20000; i++ {
		b := []byte(seeds[r.Intn(len(seeds))])
		for j := 0; j < 1+r.Intn(4); j++ {
			p := r.Intn(len(b))
			switch r.Intn(3) {
			case 0:
				b[p] = "{}[]\":,01aAtfnu \\"[r.Intn(16)]
			case 1:
				b = append(b[:p], b[p+1:]...)
			default:
				b = append(b[:p], append([]byte{b[r.Intn(len(b))]}, b[p:]...)...)
			}
		}
		fuzzOne(t, b)
	}
}
