"""The attack surface of an app: its endpoints, found three ways (its source, the documents it ships, a crawl of the
running app), each with the fields it reads and, for source routes, its handler's `file:line`."""
