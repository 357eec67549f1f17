// Package geoip tells where an IP address is, from a MaxMind-format database (GeoLite2-City,
// GeoIP2-City, GeoLite2-Country, DB-IP lite): the country, the continent and, with a city
// database, the coordinates and their accuracy radius.
//
// It serves every role that places addresses: the redirector and GeoDNS place visitors (or their
// resolvers) to choose the nearest edge, and an edge places its own public address to report
// where it is. Locator is the one method they need; *DB implements it.
//
// # Guarantees
//
//   - A database is verified whole before it serves; a file that fails to load never replaces a
//     working one, and lookups never observe a half-loaded database.
//   - Lookups go on during a reload: each sees either the old database or the new one.
//   - An address the database does not know yields no record and no error, never the point (0, 0):
//     coordinates are reported only when the database has them.
//
// # Caveats
//
// The file is read into memory (see DB), so a city database costs its size in heap, twice during
// a reload. Watch notices a new file by its size and modification time; a file rewritten in place
// with the same size within the file system's timestamp granularity is not noticed until Reload.
package geoip
