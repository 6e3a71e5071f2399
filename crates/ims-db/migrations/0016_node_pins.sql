-- Several nodes (issue 16): each running node records when it was last seen (every
-- sweep), so that work pinned to a node, such as what an image server's VM needs, waits
-- for that node while it lives and falls to any node once it stopped answering; each
-- image server records the node its VM runs on.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    last_seen TEXT NOT NULL
);
ALTER TABLE jobs ADD COLUMN pinned_node TEXT;
ALTER TABLE image_servers ADD COLUMN node_id TEXT;
