-- RedPajama's GitHub query (rp_v1 data_prep/github/README.md) over the public dataset
-- bigquery-public-data.github_repos: file contents joined with their (repo, ref, path) rows,
-- the repository's licence and its languages; only MIT, BSD and Apache licences; no empty content.
--
-- Same joins, same licence filter, same rows and columns as RedPajama's `SELECT *`. Differences:
-- the columns are named (those `SELECT *` returns today; `binary` quoted, a keyword in other SQL
-- dialects), so a column added to the public tables cannot change the records; and the result
-- goes into a table that the pipeline reads with the Storage Read API, where RedPajama exported
-- it to gs:// as JSON and downloaded it.
SELECT repo_name, ref, path, mode, symlink_target, id, size, content, `binary`, copies, license, language
FROM (SELECT * FROM `bigquery-public-data.github_repos.contents`
      INNER JOIN `bigquery-public-data.github_repos.files` USING (id))
  INNER JOIN `bigquery-public-data.github_repos.licenses` USING (repo_name)
  INNER JOIN `bigquery-public-data.github_repos.languages` USING (repo_name)
WHERE (license LIKE 'mit%' OR license LIKE 'bsd%' OR license LIKE 'apache%')
  AND content IS NOT NULL
