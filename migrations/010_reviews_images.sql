-- Reviews of released orders and item images.
-- reviews: one per order (UNIQUE transaction_uuid), by its buyer; the store's one answer
-- lives in the same row (set once: an UPDATE ... WHERE reply IS NULL); staff hide a review
-- (hidden_*) and the audit log keeps who and why. Scores are integers 1-5.
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    transaction_uuid VARCHAR(36) NOT NULL UNIQUE,
    store_uuid VARCHAR(36) NOT NULL,
    item_uuid VARCHAR(36) NOT NULL,
    buyer_uuid VARCHAR(36) NOT NULL,
    score INTEGER NOT NULL,
    body TEXT NULL,
    reply TEXT NULL,
    reply_by VARCHAR(36) NULL,
    replied_at VARCHAR(19) NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    hidden_by VARCHAR(36) NULL,
    hidden_reason VARCHAR(255) NULL,
    hidden_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid),
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid),
    FOREIGN KEY (item_uuid) REFERENCES items (uuid),
    FOREIGN KEY (buyer_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_reviews_store ON reviews (store_uuid, hidden, id);
CREATE INDEX IF NOT EXISTS idx_reviews_item ON reviews (item_uuid, hidden, id);

-- item_images: at most 5 per item (lib/images.py counts under a lock on the item row);
-- the files are MEDIA_DIR/items/<uuid>.<ext> and <uuid>.thumb.<ext>; position orders
-- them (the lowest is the marketplace card's).
CREATE TABLE IF NOT EXISTS item_images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    item_uuid VARCHAR(36) NOT NULL,
    position INTEGER NOT NULL,
    format VARCHAR(8) NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    thumb_width INTEGER NOT NULL,
    thumb_height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (item_uuid) REFERENCES items (uuid)
);
CREATE INDEX IF NOT EXISTS idx_item_images_item ON item_images (item_uuid, position);
