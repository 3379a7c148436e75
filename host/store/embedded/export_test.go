package embedded

import "context"

// Pragma returns a PRAGMA's value on the writer's connection and on a
// reader's.
func (s *Store) Pragma(ctx context.Context, name string) (writer, reader string, err error) {
	if err := s.w.QueryRowContext(ctx, "PRAGMA "+name).Scan(&writer); err != nil {
		return "", "", err
	}
	err = s.r.QueryRowContext(ctx, "PRAGMA "+name).Scan(&reader)
	return writer, reader, err
}

// Search returns the ids of the events whose title, message or exception
// values match an FTS5 query.
func (s *Store) Search(ctx context.Context, query string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.id FROM events_fts f JOIN events e ON e.seq = f.rowid
		WHERE events_fts MATCH ? ORDER BY e.seq`, query)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
}
