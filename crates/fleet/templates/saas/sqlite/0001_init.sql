-- saas template, version 1.0.0: accounts, users, projects, tasks.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    full_name   TEXT,
    is_admin    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_users_account ON users (account_id);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    archived_at TEXT,
    UNIQUE (account_id, name)
);
CREATE INDEX idx_projects_live ON projects (account_id) WHERE archived_at IS NULL;

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    title       TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'todo' CHECK (state IN ('todo', 'doing', 'done')),
    due_on      TEXT
);
CREATE INDEX idx_tasks_project_state ON tasks (project_id, state);

CREATE VIEW open_tasks AS
    SELECT t.id, t.title, p.name AS project
      FROM tasks t JOIN projects p ON p.id = t.project_id
     WHERE t.state <> 'done';
