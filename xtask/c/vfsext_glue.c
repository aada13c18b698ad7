/*
** Glue used by `cargo xtask sqlite-tests`: it is compiled in place of
** SQLite's amalgamation (it includes it) when building speedtest1, mptest
** and testfixture, with -DSQLITE_EXTRA_INIT=vfsext_extra_init, and the
** program is linked with the extension's static library (libvfs_ext.a).
**
** SQLite calls vfsext_extra_init at the end of every sqlite3_initialize()
** that really initialises the library. It hands the project's extension
** this SQLite's own function table (the static sqlite3Apis of the
** amalgamation, visible only in this translation unit), so every VFS of
** crates/vfs-ext is registered before the program opens anything. The
** extension's Rust code calls SQLite only through that table, so the
** program holds one SQLite and no symbol is defined twice.
**
** Two things do not survive sqlite3_shutdown(), which the TCL suite calls
** often: the auto extensions (shutdown resets them; the extension uses one
** for its connection hooks, e.g. the reserve bytes of cksm) and the default
** VFS (the next sqlite3_os_init() makes "unix" the default again). The
** extension itself registers its VFSes once per process, so this file
** remembers the auto extensions it installs (through a copy of the
** function table whose auto_extension entry passes through here) and puts
** them back, and makes $VFSEXT_DEFAULT the default again, on every later
** initialisation. VFS registrations do survive a shutdown.
**
** Environment: VFSEXT_DEFAULT=<name> makes that VFS the default;
** VFSEXT_DISABLE=1 skips the extension entirely (plain SQLite, the
** baseline of the comparisons); in testfixture, VFSEXT_CKSUMVFS=1 skips it
** too and makes SQLite's own cksumvfs the default instead (see below).
**
** This file is the project's own code; the SQLite sources it includes are
** downloaded at build time and never committed.
*/
#include "sqlite3.c"

#include <stdio.h>
#include <stdlib.h>

#ifdef SQLITE_CKSUMVFS_STATIC
/* testfixture links SQLite's own ext/misc/cksumvfs.c: with
** VFSEXT_CKSUMVFS=1 it becomes the default VFS and every connection asks
** for 8 reserved bytes per page, as the project's cksm stack does, so the
** TCL suite can be run on SQLite's checksum VFS for comparison. */
int sqlite3_register_cksumvfs(const char*);
static int vfsextReserve8(sqlite3 *db, char **pzErr,
                          const sqlite3_api_routines *pApi){
  int n = 8;
  (void)pzErr;
  (void)pApi;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
  return SQLITE_OK;
}
static int vfsextCksumvfs(void){
  int rc = sqlite3_register_cksumvfs(0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_vfs_register(sqlite3_vfs_find("cksmvfs"), 1);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_auto_extension((void(*)(void))vfsextReserve8);
  }
  return rc;
}
#endif

/* The extension's entry point (crates/vfs-ext). */
int sqlite3_vfsext_init(sqlite3*, char**, const sqlite3_api_routines*);

/* Upper bound on the auto extensions the extension installs (one today). */
#define VFSEXT_MAX_AUTO 16

static sqlite3_api_routines vfsextApi;        /* sqlite3Apis, one entry changed */
static void (*vfsextAuto[VFSEXT_MAX_AUTO])(void);
static int vfsextNAuto = 0;
static int vfsextDone = 0;

/* The auto_extension entry of the table handed to the extension. */
static int vfsextAutoExtension(void (*xEntry)(void)){
  int i;
  for(i=0; i<vfsextNAuto && vfsextAuto[i]!=xEntry; i++){}
  if( i==vfsextNAuto ){
    if( vfsextNAuto>=VFSEXT_MAX_AUTO ) return SQLITE_NOMEM;
    vfsextAuto[vfsextNAuto++] = xEntry;
  }
  return sqlite3_auto_extension(xEntry);
}

int vfsext_extra_init(const char *zUnused){
  int rc = SQLITE_OK;
  int i;
  const char *zDefault;
  (void)zUnused;
  /* VFSEXT_DISABLE=1: plain SQLite, for the baseline runs. */
  zDefault = getenv("VFSEXT_DISABLE");
  if( zDefault && zDefault[0]=='1' ) return SQLITE_OK;
#ifdef SQLITE_CKSUMVFS_STATIC
  zDefault = getenv("VFSEXT_CKSUMVFS");
  if( zDefault && zDefault[0]=='1' ) return vfsextCksumvfs();
#endif
  if( !vfsextDone ){
    char *zErr = 0;
    vfsextApi = sqlite3Apis;
    vfsextApi.auto_extension = vfsextAutoExtension;
    /* db==NULL: the static case, answers SQLITE_OK on success. */
    rc = sqlite3_vfsext_init(0, &zErr, &vfsextApi);
    if( rc!=SQLITE_OK ){
      fprintf(stderr, "vfsext_extra_init: sqlite3_vfsext_init failed (%d): %s\n",
              rc, zErr ? zErr : "(no message)");
      sqlite3_free(zErr);
      return rc;
    }
    vfsextDone = 1;
  }else{
    for(i=0; i<vfsextNAuto && rc==SQLITE_OK; i++){
      rc = sqlite3_auto_extension(vfsextAuto[i]);
    }
    if( rc!=SQLITE_OK ) return rc;
  }
  zDefault = getenv("VFSEXT_DEFAULT");
  if( zDefault && zDefault[0] ){
    sqlite3_vfs *pVfs = sqlite3_vfs_find(zDefault);
    if( pVfs==0 ){
      fprintf(stderr, "vfsext_extra_init: VFSEXT_DEFAULT=%s: no such VFS\n",
              zDefault);
      return SQLITE_ERROR;
    }
    rc = sqlite3_vfs_register(pVfs, 1);
  }
  return rc;
}
