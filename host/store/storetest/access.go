package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

func newOrg(t *testing.T, s store.Store, slug string) *store.Org {
	t.Helper()
	o := &store.Org{ID: NewID(), Slug: slug, Name: "Org " + slug, CreatedAt: base}
	noErr(t, "CreateOrg", s.CreateOrg(context.Background(), o))
	return o
}

func newMember(t *testing.T, s store.Store, orgID, email, role string) *store.Member {
	t.Helper()
	m := &store.Member{ID: NewID(), OrgID: orgID, Name: "Someone", Email: email, Role: role} // created now: in order
	noErr(t, "CreateMember", s.CreateMember(context.Background(), m))
	return m
}

func testOrgs(t *testing.T, s store.Store) {
	ctx := context.Background()
	def, err := s.Org(ctx, store.DefaultOrgSlug)
	noErr(t, "Org(default)", err)
	if def.ID != store.DefaultOrgID {
		t.Errorf("default organisation: got id %s, want %s", def.ID, store.DefaultOrgID)
	}
	o := newOrg(t, s, "acme")
	wantErr(t, "CreateOrg with a taken slug", s.CreateOrg(ctx, &store.Org{ID: NewID(), Slug: "acme", Name: "x"}), store.ErrConflict)
	wantErr(t, "CreateOrg with a taken id", s.CreateOrg(ctx, &store.Org{ID: o.ID, Slug: "other", Name: "x"}), store.ErrConflict)
	for _, key := range []string{o.ID, "acme"} {
		got, err := s.Org(ctx, key)
		noErr(t, "Org", err)
		want := *o
		want.CreatedAt = utc(want.CreatedAt)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("Org(%q): got %+v, want %+v", key, *got, want)
		}
	}
	_, err = s.Org(ctx, NewID())
	wantErr(t, "Org(unknown)", err, store.ErrNotFound)
	list, err := s.ListOrgs(ctx)
	noErr(t, "ListOrgs", err)
	if len(list) != 2 {
		t.Fatalf("ListOrgs: got %d organisations, want 2 (default and acme)", len(list))
	}

	t.Run("projects", func(t *testing.T) {
		p := &store.Project{ID: NewID(), Slug: "in-acme", Name: "In acme", OrgID: o.ID}
		noErr(t, "CreateProject", s.CreateProject(ctx, p))
		got, err := s.Project(ctx, p.ID)
		noErr(t, "Project", err)
		if got.OrgID != o.ID {
			t.Errorf("project organisation: got %q, want %q", got.OrgID, o.ID)
		}
		q := &store.Project{ID: NewID(), Slug: "no-org", Name: "No org"}
		noErr(t, "CreateProject without an organisation", s.CreateProject(ctx, q))
		if q.OrgID != store.DefaultOrgID {
			t.Errorf("project created without an organisation: got OrgID %q, want the default", q.OrgID)
		}
		got, err = s.Project(ctx, q.ID)
		noErr(t, "Project", err)
		if got.OrgID != store.DefaultOrgID {
			t.Errorf("stored project without an organisation: got OrgID %q, want the default", got.OrgID)
		}
		err = s.CreateProject(ctx, &store.Project{ID: NewID(), Slug: "lost", Name: "Lost", OrgID: NewID()})
		wantErr(t, "CreateProject in an unknown organisation", err, store.ErrNotFound)
	})
}

func testMembers(t *testing.T, s store.Store) {
	ctx := context.Background()
	o := newOrg(t, s, "team")
	other := newOrg(t, s, "others")
	owner := newMember(t, s, o.ID, "owner@example.com", store.RoleOwner)
	viewer := newMember(t, s, o.ID, "viewer@example.com", store.RoleViewer)
	newMember(t, s, other.ID, "owner@example.com", store.RoleOwner) // same email, other organisation

	wantErr(t, "CreateMember with a taken email",
		s.CreateMember(ctx, &store.Member{ID: NewID(), OrgID: o.ID, Name: "x", Email: "viewer@example.com", Role: store.RoleAdmin}),
		store.ErrConflict)
	wantErr(t, "CreateMember in an unknown organisation",
		s.CreateMember(ctx, &store.Member{ID: NewID(), OrgID: NewID(), Name: "x", Email: "x@example.com", Role: store.RoleAdmin}),
		store.ErrNotFound)
	if err := s.CreateMember(ctx, &store.Member{ID: NewID(), OrgID: o.ID, Name: "x", Email: "y@example.com", Role: "boss"}); err == nil {
		t.Error("CreateMember with role boss: got no error")
	}

	got, err := s.Member(ctx, viewer.ID)
	noErr(t, "Member", err)
	want := *viewer
	want.CreatedAt = utc(want.CreatedAt)
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Member: got %+v, want %+v", *got, want)
	}
	_, err = s.Member(ctx, NewID())
	wantErr(t, "Member(unknown)", err, store.ErrNotFound)
	_, err = s.Member(ctx, "not-a-uuid")
	wantErr(t, "Member(not a UUID)", err, store.ErrNotFound)
	list, err := s.ListMembers(ctx, o.ID)
	noErr(t, "ListMembers", err)
	if len(list) != 2 || list[0].ID != owner.ID || list[1].ID != viewer.ID {
		t.Errorf("ListMembers: got %+v, want owner then viewer", list)
	}

	t.Run("last owner", func(t *testing.T) {
		wantErr(t, "demote the last owner", s.SetMemberRole(ctx, owner.ID, store.RoleAdmin), store.ErrConflict)
		wantErr(t, "remove the last owner", s.DeleteMember(ctx, owner.ID), store.ErrConflict)
		noErr(t, "SetMemberRole(owner → owner)", s.SetMemberRole(ctx, owner.ID, store.RoleOwner))
		wantErr(t, "SetMemberRole(unknown)", s.SetMemberRole(ctx, NewID(), store.RoleAdmin), store.ErrNotFound)
		wantErr(t, "DeleteMember(unknown)", s.DeleteMember(ctx, NewID()), store.ErrNotFound)

		// Two owners demote each other at once: one must stay.
		noErr(t, "promote", s.SetMemberRole(ctx, viewer.ID, store.RoleOwner))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{owner.ID, viewer.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.SetMemberRole(ctx, id, store.RoleViewer)
			}()
		}
		wg.Wait()
		conflicts := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, store.ErrConflict):
				conflicts++
			case err != nil:
				t.Fatalf("concurrent demotion: %v", err)
			}
		}
		if conflicts != 1 {
			t.Errorf("concurrent demotion of two owners: got %d conflicts, want 1", conflicts)
		}
		owners := 0
		list, err := s.ListMembers(ctx, o.ID)
		noErr(t, "ListMembers", err)
		for _, m := range list {
			if m.Role == store.RoleOwner {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("after concurrent demotion: %d owners, want 1", owners)
		}
		// Put things back: owner is the owner, viewer the viewer.
		noErr(t, "SetMemberRole", s.SetMemberRole(ctx, owner.ID, store.RoleOwner))
		noErr(t, "SetMemberRole", s.SetMemberRole(ctx, viewer.ID, store.RoleViewer))
	})

	t.Run("tokens", func(t *testing.T) {
		tok := &store.MemberToken{ID: NewID(), MemberID: viewer.ID, Name: "laptop", Prefix: "mpt_abcd", Hash: sha("token-1"), CreatedAt: base}
		noErr(t, "CreateMemberToken", s.CreateMemberToken(ctx, tok))
		if tok.OrgID != o.ID {
			t.Errorf("CreateMemberToken: OrgID %q, want %q", tok.OrgID, o.ID)
		}
		wantErr(t, "CreateMemberToken with a taken hash",
			s.CreateMemberToken(ctx, &store.MemberToken{ID: NewID(), MemberID: viewer.ID, Prefix: "x", Hash: sha("token-1")}),
			store.ErrConflict)
		wantErr(t, "CreateMemberToken for an unknown member",
			s.CreateMemberToken(ctx, &store.MemberToken{ID: NewID(), MemberID: NewID(), Prefix: "x", Hash: sha("token-2")}),
			store.ErrNotFound)
		want := *tok
		want.CreatedAt = utc(want.CreatedAt)
		got, err := s.MemberTokenByHash(ctx, sha("token-1"))
		noErr(t, "MemberTokenByHash", err)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("MemberTokenByHash: got %+v, want %+v", *got, want)
		}
		got, err = s.MemberToken(ctx, tok.ID)
		noErr(t, "MemberToken", err)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("MemberToken: got %+v, want %+v", *got, want)
		}
		_, err = s.MemberTokenByHash(ctx, sha("nope"))
		wantErr(t, "MemberTokenByHash(unknown)", err, store.ErrNotFound)

		at := base.Add(time.Hour)
		noErr(t, "RevokeMemberToken", s.RevokeMemberToken(ctx, tok.ID, at))
		noErr(t, "RevokeMemberToken again", s.RevokeMemberToken(ctx, tok.ID, at.Add(time.Hour)))
		wantErr(t, "RevokeMemberToken(unknown)", s.RevokeMemberToken(ctx, NewID(), at), store.ErrNotFound)
		list, err := s.ListMemberTokens(ctx, viewer.ID)
		noErr(t, "ListMemberTokens", err)
		if len(list) != 1 || list[0].RevokedAt == nil || !list[0].RevokedAt.Equal(utc(at)) {
			t.Fatalf("ListMemberTokens after revoking: got %+v, want one token revoked at %v", list, utc(at))
		}

		// Removing a member removes its tokens.
		noErr(t, "DeleteMember", s.DeleteMember(ctx, viewer.ID))
		_, err = s.MemberTokenByHash(ctx, sha("token-1"))
		wantErr(t, "MemberTokenByHash after DeleteMember", err, store.ErrNotFound)
		_, err = s.Member(ctx, viewer.ID)
		wantErr(t, "Member after DeleteMember", err, store.ErrNotFound)
	})

	t.Run("api key by id", func(t *testing.T) {
		p := newProject(t, s)
		k := &store.APIKey{ID: NewID(), ProjectID: p.ID, Prefix: "msk_x", Hash: sha("key-by-id"), CreatedAt: base}
		noErr(t, "CreateAPIKey", s.CreateAPIKey(ctx, k))
		got, err := s.APIKey(ctx, k.ID)
		noErr(t, "APIKey", err)
		if got.ProjectID != p.ID || got.Hash != k.Hash {
			t.Errorf("APIKey: got %+v, want %+v", got, k)
		}
		_, err = s.APIKey(ctx, NewID())
		wantErr(t, "APIKey(unknown)", err, store.ErrNotFound)
	})
}
