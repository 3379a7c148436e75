package host_test

import (
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/store"
)

// TestTeams walks organisations, members, roles and tokens through the
// API: the admin token bootstraps an organisation and its owner; the
// owner's token does the rest; role changes, removals and revocations
// apply at once.
func TestTeams(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		n := newAppNode(t, kind, host.Config{})
		var org store.Org
		n.must(201, "POST", "/api/v1/orgs", adminToken, map[string]string{"name": "Acme Inc", "slug": "acme"}).decode(t, &org)
		n.must(409, "POST", "/api/v1/orgs", adminToken, map[string]string{"name": "Again", "slug": "acme"})

		var owner store.Member
		n.must(201, "POST", "/api/v1/orgs/acme/members", adminToken,
			map[string]string{"name": "Ada", "email": "ada@example.com", "role": "owner"}).decode(t, &owner)
		var tok struct {
			store.MemberToken
			Token string `json:"token"`
		}
		n.must(201, "POST", "/api/v1/orgs/acme/members/"+owner.ID+"/tokens", adminToken, map[string]string{"name": "laptop"}).decode(t, &tok)
		if !strings.HasPrefix(tok.Token, "mpt_") || tok.MemberID != owner.ID || tok.OrgID != org.ID {
			t.Fatalf("new token: %+v", tok)
		}
		ownerTok := tok.Token
		listed := n.must(200, "GET", "/api/v1/orgs/acme/members/"+owner.ID+"/tokens", ownerTok, nil)
		if strings.Contains(string(listed.Body), ownerTok) || strings.Contains(string(listed.Body), `"hash"`) {
			t.Errorf("token list shows the secret: %s", listed)
		}

		var me struct {
			Admin bool   `json:"admin"`
			Role  string `json:"role"`
			OrgID string `json:"org_id"`
		}
		n.must(200, "GET", "/api/v1/me", ownerTok, nil).decode(t, &me)
		if me.Admin || me.Role != "owner" || me.OrgID != org.ID {
			t.Errorf("GET /me as the owner: %+v", me)
		}

		// The owner's project lands in its organisation; the admin token's,
		// without one, in the default organisation.
		var proj struct {
			ID    string `json:"id"`
			OrgID string `json:"org_id"`
		}
		n.must(201, "POST", "/api/v1/projects", ownerTok, map[string]string{"name": "Shop"}).decode(t, &proj)
		if proj.OrgID != org.ID {
			t.Errorf("owner's project: org %s, want %s", proj.OrgID, org.ID)
		}
		n.must(201, "POST", "/api/v1/projects", adminToken, map[string]string{"name": "Ops"}).decode(t, &proj)
		if proj.OrgID != store.DefaultOrgID {
			t.Errorf("admin token's project without org: org %s, want the default", proj.OrgID)
		}
		n.must(400, "POST", "/api/v1/projects", ownerTok, map[string]string{"name": "X", "org": "default"}) // not its organisation

		// A viewer, with a token the owner makes.
		var viewer store.Member
		n.must(201, "POST", "/api/v1/orgs/acme/members", ownerTok,
			map[string]string{"name": "Vic", "email": "Vic@Example.com", "role": "viewer"}).decode(t, &viewer)
		if viewer.Email != "vic@example.com" {
			t.Errorf("email stored as %q, want it lower-cased", viewer.Email)
		}
		n.must(409, "POST", "/api/v1/orgs/acme/members", ownerTok, map[string]string{"name": "Vic", "email": "vic@example.com", "role": "admin"})
		n.must(201, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/tokens", ownerTok, nil).decode(t, &tok)
		viewerTok, viewerTokID := tok.Token, tok.ID

		var projects struct {
			Projects []store.Project `json:"projects"`
		}
		n.must(200, "GET", "/api/v1/projects", viewerTok, nil).decode(t, &projects)
		if len(projects.Projects) != 1 || projects.Projects[0].Slug != "shop" {
			t.Errorf("viewer's project list: %+v, want only shop", projects.Projects)
		}
		n.must(200, "GET", "/api/v1/projects/shop", viewerTok, nil)
		n.must(404, "GET", "/api/v1/projects/ops", viewerTok, nil) // another organisation's
		n.must(403, "POST", "/api/v1/projects/shop/api-keys", viewerTok, nil)
		// A member manages its own tokens.
		n.must(201, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/tokens", viewerTok, map[string]string{"name": "cli"})
		n.must(403, "GET", "/api/v1/orgs/acme/members/"+owner.ID+"/tokens", viewerTok, nil)

		// Promotion applies at once.
		n.must(200, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/role", ownerTok, map[string]string{"role": "admin"})
		n.must(201, "POST", "/api/v1/projects/shop/api-keys", viewerTok, nil)
		n.must(403, "POST", "/api/v1/orgs/acme/members", viewerTok, map[string]string{"name": "X", "email": "x@example.com", "role": "viewer"})

		// The last owner stays.
		n.must(409, "POST", "/api/v1/orgs/acme/members/"+owner.ID+"/role", ownerTok, map[string]string{"role": "admin"})
		n.must(409, "POST", "/api/v1/orgs/acme/members/"+owner.ID+"/remove", ownerTok, nil)

		// Revocation and removal apply at once.
		n.must(200, "POST", "/api/v1/tokens/"+viewerTokID+"/revoke", viewerTok, nil)
		r := n.must(401, "GET", "/api/v1/projects", viewerTok, nil)
		if !strings.Contains(string(r.Body), "revoked") {
			t.Errorf("revoked token: %s", r)
		}
		var second struct {
			Token string `json:"token"`
		}
		n.must(201, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/tokens", ownerTok, nil).decode(t, &second)
		n.must(200, "GET", "/api/v1/projects", second.Token, nil)
		n.must(200, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/remove", ownerTok, nil)
		n.must(401, "GET", "/api/v1/projects", second.Token, nil)
		n.must(404, "POST", "/api/v1/orgs/acme/members/"+viewer.ID+"/role", ownerTok, map[string]string{"role": "viewer"})
		n.must(404, "POST", "/api/v1/tokens/"+viewerTokID+"/revoke", ownerTok, nil) // went with its member

		t.Run("bad input", func(t *testing.T) {
			cases := []struct {
				name, method, path string
				body               any
				status             int
				msg                string
			}{
				{"org without name", "POST", "/api/v1/orgs", map[string]string{"slug": "x"}, 400, `"name"`},
				{"org bad slug", "POST", "/api/v1/orgs", map[string]string{"name": "X", "slug": "Not A Slug"}, 400, `"slug"`},
				{"member bad email", "POST", "/api/v1/orgs/acme/members", map[string]string{"name": "X", "email": "nope", "role": "viewer"}, 400, `"email"`},
				{"member bad role", "POST", "/api/v1/orgs/acme/members", map[string]string{"name": "X", "email": "x@example.com", "role": "boss"}, 400, `"role"`},
				{"member no name", "POST", "/api/v1/orgs/acme/members", map[string]string{"email": "x@example.com", "role": "viewer"}, 400, `"name"`},
				{"member unknown field", "POST", "/api/v1/orgs/acme/members", map[string]any{"name": "X", "email": "x@example.com", "role": "viewer", "age": 3}, 400, `"age"`},
				{"role wrong type", "POST", "/api/v1/orgs/acme/members/" + owner.ID + "/role", map[string]any{"role": 1}, 400, `"role"`},
				{"token name too long", "POST", "/api/v1/orgs/acme/members/" + owner.ID + "/tokens", map[string]string{"name": strings.Repeat("x", 101)}, 400, `"name"`},
				{"unknown org", "GET", "/api/v1/orgs/nowhere/members", nil, 404, `organisation "nowhere" not found`},
				{"unknown member", "POST", "/api/v1/orgs/acme/members/" + store.DefaultOrgID + "/remove", nil, 404, "member"},
				{"unknown token", "POST", "/api/v1/tokens/" + store.DefaultOrgID + "/revoke", nil, 404, "token"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := n.do(c.method, c.path, adminToken, c.body)
					if r.Status != c.status || !strings.Contains(r.errorText(), c.msg) {
						t.Errorf("got %s, want %d mentioning %s", r, c.status, c.msg)
					}
				})
			}
		})
	})
}
