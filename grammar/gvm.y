/* gvm.y - the .gvm grammar. Pure and reentrant, with locations; every action is one
 * call into compiler/ast.c. Syntax errors are worded by yyreport_syntax_error, which
 * names the expected tokens and, for a missing closer, the bracket it would close. */
%code requires {
#include "lex.h"
typedef void *yyscan_t;
#define YYLTYPE Loc
#define YYLTYPE_IS_DECLARED 1
#define YYLLOC_DEFAULT(Cur, Rhs, N) do { if (N) { (Cur) = YYRHSLOC(Rhs, 1); } \
    else { (Cur) = YYRHSLOC(Rhs, 0); (Cur).len = 0; } } while (0)
}

%code {
#include "diag.h"
#include "gvm.lex.h"
static void yyerror(Loc *loc, LexState *ls, yyscan_t scanner, const char *msg);
#define CX (ls->cx)
}

%define api.pure full
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%initial-action { @$ = (Loc){ls->file, 1, 1, 0}; }
%parse-param {LexState *ls} {yyscan_t scanner}
%lex-param {yyscan_t scanner}

%union { int64_t ival; double fval; const char *str; AstNode *node; }

%token IMPORT "import" LAYER "layer" MODEL "model" SIZE "size" STRATEGY "strategy" RETURN "return" IF "if" ELSE "else"
%token REPEAT "repeat" IN "in" BLOCK "block" AS "as" TRUE "true" FALSE "false"
%token EQ "==" NE "!=" LE "<=" GE ">=" AND "&&" OR "||"
%token <str> NAME "name" STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"

%type <node> items item params param_list param stmts stmt else_part expr primary call args arg_list arg settings

%left OR
%left AND
%nonassoc EQ NE '<' '>' LE GE
%left '+' '-'
%left '*' '/' '%'
%right UMINUS '!'

%%

file: items                                   { ls->items = $1; }
    ;
items: %empty                                 { $$ = NULL; }
     | items item                             { $$ = ast_append($1, $2); }
     ;
item: IMPORT STRING                           { $$ = ast_import(CX, @2, $2); }
    | LAYER NAME '(' params ')' '{' stmts '}' { $$ = ast_def(CX, @2, AST_LAYER, $2, $4, $7); }
    | MODEL NAME '(' params ')' '{' stmts '}' { $$ = ast_def(CX, @2, AST_MODEL, $2, $4, $7); }
    | SIZE NAME '=' call                      { $$ = ast_size(CX, @2, $2, $4); }
    | STRATEGY '{' settings '}'               { $$ = ast_strategy(CX, @1, NULL, $3); }
    | STRATEGY NAME '{' settings '}'          { $$ = ast_strategy(CX, @2, $2, $4); }
    ;
settings: %empty                              { $$ = NULL; }
        | settings NAME '=' expr              { $$ = ast_append($1, ast_assign(CX, @2, $2, $4)); }
        | settings ';'                        { $$ = $1; }
        ;
params: %empty                                { $$ = NULL; }
      | param_list                            { $$ = $1; }
      | param_list ','                        { $$ = $1; }
      ;
param_list: param                             { $$ = ast_append(NULL, $1); }
          | param_list ',' param              { $$ = ast_append($1, $3); }
          ;
param: NAME                                   { $$ = ast_param(CX, @1, $1, NULL); }
     | NAME '=' expr                          { $$ = ast_param(CX, @1, $1, $3); }
     ;
stmts: %empty                                 { $$ = NULL; }
     | stmts stmt                             { $$ = ast_append($1, $2); }
     ;
stmt: NAME '=' expr                           { $$ = ast_assign(CX, @1, $1, $3); }
    | RETURN expr                             { $$ = ast_return(CX, @1, $2); }
    | IF expr '{' stmts '}' else_part         { $$ = ast_if(CX, @1, $2, $4, $6); }
    | REPEAT NAME IN expr '{' stmts '}'       { $$ = ast_repeat(CX, @1, $2, $4, $6); }
    | BLOCK NAME '{' stmts '}'                { $$ = ast_block(CX, @2, $2, NULL, $4); }
    | BLOCK NAME '[' expr ']' '{' stmts '}'   { $$ = ast_block(CX, @2, $2, $4, $7); }
    | ';'                                     { $$ = NULL; }
    ;
else_part: %empty                             { $$ = NULL; }
         | ELSE '{' stmts '}'                 { $$ = ast_if(CX, @1, NULL, $3, NULL); }
         | ELSE IF expr '{' stmts '}' else_part { $$ = ast_if(CX, @2, $3, $5, $7); }
         ;
expr: expr OR expr                            { $$ = ast_binop(CX, @2, OP_OR, $1, $3); }
    | expr AND expr                           { $$ = ast_binop(CX, @2, OP_AND, $1, $3); }
    | expr EQ expr                            { $$ = ast_binop(CX, @2, OP_EQ, $1, $3); }
    | expr NE expr                            { $$ = ast_binop(CX, @2, OP_NE, $1, $3); }
    | expr '<' expr                           { $$ = ast_binop(CX, @2, '<', $1, $3); }
    | expr '>' expr                           { $$ = ast_binop(CX, @2, '>', $1, $3); }
    | expr LE expr                            { $$ = ast_binop(CX, @2, OP_LE, $1, $3); }
    | expr GE expr                            { $$ = ast_binop(CX, @2, OP_GE, $1, $3); }
    | expr '+' expr                           { $$ = ast_binop(CX, @2, '+', $1, $3); }
    | expr '-' expr                           { $$ = ast_binop(CX, @2, '-', $1, $3); }
    | expr '*' expr                           { $$ = ast_binop(CX, @2, '*', $1, $3); }
    | expr '/' expr                           { $$ = ast_binop(CX, @2, '/', $1, $3); }
    | expr '%' expr                           { $$ = ast_binop(CX, @2, '%', $1, $3); }
    | '-' expr %prec UMINUS                   { $$ = ast_unop(CX, @1, OP_NEG, $2); }
    | '!' expr                                { $$ = ast_unop(CX, @1, OP_NOT, $2); }
    | primary                                 { $$ = $1; }
    ;
primary: INT                                  { $$ = ast_int(CX, @1, $1); }
       | FLOAT                                { $$ = ast_float(CX, @1, $1); }
       | STRING                               { $$ = ast_str(CX, @1, $1); }
       | TRUE                                 { $$ = ast_bool(CX, @1, 1); }
       | FALSE                                { $$ = ast_bool(CX, @1, 0); }
       | NAME                                 { $$ = ast_name(CX, @1, $1); }
       | call                                 { $$ = $1; }
       | '(' expr ')'                         { $$ = $2; }
       ;
call: NAME '(' args ')'                       { $$ = ast_call(CX, @1, $1, $3); }
    | call '@' NAME                           { $$ = ast_annotate(CX, $1, @3, $3); }
    | call AS NAME                            { $$ = ast_label(CX, $1, $3); }
    ;
args: %empty                                  { $$ = NULL; }
    | arg_list                                { $$ = $1; }
    | arg_list ','                            { $$ = $1; }
    ;
arg_list: arg                                 { $$ = ast_append(NULL, $1); }
        | arg_list ',' arg                    { $$ = ast_append($1, $3); }
        ;
arg: expr                                     { $$ = $1; }
   | NAME '=' expr                            { $$ = ast_kwarg(CX, @1, $1, $3); }
   ;

%%

static const char *closer_of(char open) { return open == '(' ? ")" : open == '[' ? "]" : "}"; }

/* "expected ')' to close '(' at 14:16" when the closer of the innermost open bracket is
 * among the expected tokens; else the list of what was expected. */
static int yyreport_syntax_error(const yypcontext_t *pc, LexState *ls, yyscan_t scanner)
{
  (void)scanner;
  yysymbol_kind_t tok = yypcontext_token(pc), exp[64];
  if (tok == YYSYMBOL_YYUNDEF && ls->lex_error)
    return 0; /* the lexer already said what is wrong with this token */
  Loc at = *yypcontext_location(pc);
  int n = yypcontext_expected_tokens(pc, exp, 64);
  const char *got = tok == YYSYMBOL_YYEOF ? "end of file" : yysymbol_name(tok);
  const char *tname = yysymbol_name(tok);
  int at_end = tok == YYSYMBOL_YYEOF || (tname[0] == '\'' && tname[1] && strchr(")]}", tname[1]));
  if (at_end && ls->nopen > 0 && ls->nopen <= 64) {
    const char *closer = closer_of(ls->open_ch[ls->nopen - 1]);
    for (int i = 0; i < n; i++) {
      const char *name = yysymbol_name(exp[i]);
      if (name[0] == '\'' && name[1] == closer[0] && name[2] == '\'') {
        Loc o = ls->open[ls->nopen - 1];
        diag_error(ls->cx, at, "expected '%s' to close '%c' at %d:%d, found %s", closer, ls->open_ch[ls->nopen - 1],
                   o.line, o.col, got);
        diag_note(ls->cx, o, "'%c' opened here", ls->open_ch[ls->nopen - 1]);
        return 0;
      }
    }
  }
  char list[256] = "";
  for (int i = 0; i < n && i < 5; i++) {
    strncat(list, i ? (i == n - 1 ? " or " : ", ") : "", sizeof list - strlen(list) - 1);
    strncat(list, yysymbol_name(exp[i]), sizeof list - strlen(list) - 1);
  }
  if (n > 5)
    strncat(list, ", ...", sizeof list - strlen(list) - 1);
  if (n > 0)
    diag_error(ls->cx, at, "syntax error: unexpected %s, expected %s", got, list);
  else
    diag_error(ls->cx, at, "syntax error: unexpected %s", got);
  return 0;
}

static void yyerror(Loc *loc, LexState *ls, yyscan_t scanner, const char *msg)
{
  (void)scanner;
  diag_error(ls->cx, *loc, "%s", msg);
}
